"""YAML with positions: compose nodes (which carry line/column marks) and check them.

Rule validation reports every problem as `FILE:LINE:COL: message` (1-based), so the loader
works on composed nodes rather than on constructed values. `Checker` collects problems for one
file; the helpers here read scalars, strings, lists and mappings and say what was wrong where.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class YamlSyntaxError(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


def compose(text: str) -> Node | None:
    """The document's node tree (None for an empty file); YamlSyntaxError with its position."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            what += f" ({exc.context}{where})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError(line, col, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:  # e.g. a reader error (bad bytes) without a mark
        raise YamlSyntaxError(1, 1, f"YAML syntax error: {exc}") from None


def position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_constructor = yaml.constructor.SafeConstructor()


def to_python(node: Node) -> Any:
    """The plain Python value of a node (as yaml.safe_load would give it)."""
    value = _constructor.construct_object(node, deep=True)
    _constructor.constructed_objects.clear()
    _constructor.recursive_objects.clear()
    return value


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL)


def kind_name(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    if node.tag == _BOOL:
        return "true/false"
    if node.tag == _INT:
        return "a number"
    return f"'{node.value}'"


@dataclass
class Checker:
    """Collects the problems of one file; every helper returns None after reporting one."""

    file: str
    problems: list[Problem] = field(default_factory=list)
    watched_folders: tuple[str, ...] = ()
    labels_are_folders: bool = False  # Gmail: a tag named like a watched folder files mail there

    def error(self, node: Node, message: str) -> None:
        line, col = position(node)
        self.problems.append(Problem(self.file, line, col, message))

    # -- shapes -------------------------------------------------------------------------

    def mapping(self, node: Node, what: str) -> list[tuple[Node, Node]] | None:
        """The (key node, value node) pairs; duplicate keys are reported and the first kept."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping, not {kind_name(node)}")
            return None
        pairs: list[tuple[Node, Node]] = []
        seen: set[str] = set()
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode):
                self.error(knode, f"{what}: keys must be plain names")
                continue
            if knode.value in seen:
                self.error(knode, f"{what}: duplicate key '{knode.value}'")
                continue
            seen.add(knode.value)
            pairs.append((knode, vnode))
        return pairs

    def keys(self, pairs: Sequence[tuple[Node, Node]], allowed: Sequence[str], what: str,
             required: Sequence[str] = (), at: Node | None = None) -> dict[str, Node]:
        """Report unknown keys (with a suggestion) and missing required ones."""
        out: dict[str, Node] = {}
        for knode, vnode in pairs:
            if knode.value not in allowed:
                self.error(knode, f"unknown key '{knode.value}' in {what}{did_you_mean(knode.value, allowed)}")
            else:
                out[knode.value] = vnode
        for name in required:
            if name not in out and at is not None:
                self.error(at, f"{what}: missing '{name}'")
        return out

    def string(self, node: Node, what: str) -> str | None:
        """A non-empty scalar as text (`2024` or `yes` written unquoted are taken as written)."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL:
            self.error(node, f"{what} must be a string, not {kind_name(node)}")
            return None
        if node.value == "":
            self.error(node, f"{what} must not be empty")
            return None
        return node.value

    def strings(self, node: Node, what: str) -> list[tuple[str, Node]] | None:
        """A string or a non-empty list of strings, each with its node."""
        if isinstance(node, SequenceNode):
            if not node.value:
                self.error(node, f"{what} must not be an empty list")
                return None
            out = []
            for item in node.value:
                s = self.string(item, what)
                if s is not None:
                    out.append((s, item))
            return out if len(out) == len(node.value) else None
        s = self.string(node, what)
        return None if s is None else [(s, node)]

    def boolean(self, node: Node, what: str) -> bool | None:
        if not isinstance(node, ScalarNode) or node.tag != _BOOL:
            self.error(node, f"{what} must be true or false, not {kind_name(node)}")
            return None
        return bool(to_python(node))

    def choice(self, node: Node, allowed: Sequence[str], what: str) -> str | None:
        s = self.string(node, what)
        if s is None:
            return None
        if s not in allowed:
            self.error(node, f"{what}: '{s}' is not one of {', '.join(allowed)}{did_you_mean(s, allowed)}")
            return None
        return s


def node_at(node: Node, loc: Sequence[Any], *, key: bool = False) -> Node:
    """The deepest node along a pydantic error location (union member names are skipped)."""
    current = node
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(current, MappingNode):
            for knode, vnode in current.value:
                if isinstance(knode, ScalarNode) and knode.value == str(part):
                    current = knode if (last and key) else vnode
                    break
        elif isinstance(current, SequenceNode) and isinstance(part, int) and 0 <= part < len(current.value):
            current = current.value[part]
    return current


# -- positions by path: config.yaml is validated by pydantic, whose errors name a path of keys
# and indexes; `Positions.at(path)` maps that path back to where it stands in the file.


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Positions:
    file: str
    marks: dict[tuple[Any, ...], Mark] = field(default_factory=dict)  # path → value's start
    key_marks: dict[tuple[Any, ...], Mark] = field(default_factory=dict)  # path → key's start

    def at(self, path: Sequence[Any], *, key: bool = False) -> Mark:
        """The closest known position for `path`, walking up when the path is unknown."""
        p = tuple(path)
        while True:
            table = self.key_marks if key and p in self.key_marks else self.marks
            if p in table:
                return table[p]
            if not p:
                return Mark(1, 1)
            p = p[:-1]

    def where(self, path: Sequence[Any], *, key: bool = False) -> str:
        m = self.at(path, key=key)
        return f"{self.file}:{m.line}:{m.col}"


def _walk(node: Node, path: tuple[Any, ...], pos: Positions) -> Any:
    pos.marks[path] = Mark(*position(node))
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            k = to_python(key_node)
            if isinstance(k, (list, dict)):
                k = str(k)
            pos.key_marks[path + (k,)] = Mark(*position(key_node))
            out[k] = _walk(value_node, path + (k,), pos)
        return out
    if isinstance(node, SequenceNode):
        return [_walk(child, path + (i,), pos) for i, child in enumerate(node.value)]
    return to_python(node)


def load_with_positions(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one document into plain values plus the position of every key and value.

    Raises YamlSyntaxError (with line and column) on invalid YAML."""
    pos = Positions(file)
    node = compose(text)
    return (None if node is None else _walk(node, (), pos)), pos
