"""YAML with positions: compose nodes (which carry line/column marks) and check them.

Rule validation reports every problem as `FILE:LINE:COL: message` (1-based), so the loader
works on composed nodes rather than on constructed values. `Checker` collects problems for one
file; the helpers here read scalars, strings, lists and mappings and say what was wrong where.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"

# Config and rule files are small: these bounds are far above any real one and far below
# what hurts (a "billion laughs" of nested aliases, or a 100k-deep bracket nest).
MAX_NODES = 100_000  # nodes after expanding every alias
MAX_DEPTH = 200


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
    """The document's node tree (None for an empty file); YamlSyntaxError with its position.

    Beyond the parser's own checks the tree is audited (see `_audit`): no alias cycle, no
    expansion past MAX_NODES, no nesting past MAX_DEPTH, only the standard tags, and every
    typed scalar (dates, numbers) constructible, so nothing downstream meets a surprise."""
    _check_characters(text)
    try:
        root = yaml.compose(text, Loader=_Loader)
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
    except RecursionError:  # nesting deeper than the parser's stack
        raise YamlSyntaxError(1, 1, f"YAML nesting deeper than {MAX_DEPTH} levels") from None
    if root is not None:
        _audit(root)
    return root


def position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_constructor = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
# The tags a config or rule file can use, by node kind: the YAML 1.1 core of SafeLoader.
# (!!set, !!omap, !!pairs are standard too but mean nothing here, and construct lazily.)
_SCALAR_TAGS = frozenset({_STR, _NULL, _BOOL, _INT, "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp",
                          "tag:yaml.org,2002:binary"})
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
# Characters YAML 1.1 allows in a stream (besides TAB, LF, CR): anything else is refused
# where it stands rather than by the reader with no position.
_BAD_CHAR = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_KNOWN_NAMES = frozenset(t.rsplit(":", 1)[1] for t in yaml.constructor.SafeConstructor.yaml_constructors if t) | {"merge"}


def _check_characters(text: str) -> None:
    m = _BAD_CHAR.search(text)
    if m is None:
        return
    before = text[:m.start()]
    line = before.count("\n") + 1
    col = m.start() - (before.rfind("\n") + 1) + 1
    raise YamlSyntaxError(line, col, f"control character U+{ord(m.group()):04X} is not allowed in YAML (write it escaped in a double-quoted string)")


def _children(node: Node) -> list[tuple[Node, Node]]:
    """(child, node whose position to report for it): a mapping's values are placed at their key.
    A merge key `<<` is not a value of its own: it is checked with its mapping (`_check_node`)."""
    if isinstance(node, MappingNode):
        out: list[tuple[Node, Node]] = []
        for k, v in node.value:
            out += [(v, k)] if k.tag == _MERGE else [(k, k), (v, k)]
        return out
    if isinstance(node, SequenceNode):
        return [(c, c) for c in node.value]
    return []


def _audit(root: Node) -> None:
    """Refuse what would hang, blow up or crash later, at the place it is written.

    One iterative depth-first walk over the composed graph (an alias is the same node object
    reached twice): a node met again while still open is a recursive alias (also a merge key
    that merges its own mapping); each node's size counts every alias expansion below it,
    memoised so the walk stays linear in the text however much the aliases multiply."""
    size: dict[int, int] = {}  # finished nodes: their size with every alias expanded
    open_: set[int] = set()
    stack: list[tuple[Node, list[tuple[Node, Node]], int]] = [(root, _children(root), 0)]
    open_.add(id(root))
    _check_node(root)
    total = 1
    while stack:
        node, todo, acc = stack[-1]
        if not todo:
            stack.pop()
            open_.discard(id(node))
            size[id(node)] = acc + 1
            if stack:
                parent, ptodo, pacc = stack[-1]
                stack[-1] = (parent, ptodo, pacc + acc + 1)
            continue
        child, at = todo.pop()
        if id(child) in open_:
            line, col = position(at)
            raise YamlSyntaxError(line, col, "recursive alias: this refers to a node that contains it")
        if id(child) in size:
            total += size[id(child)]
            stack[-1] = (node, todo, acc + size[id(child)])
        else:
            total += 1
            if len(stack) >= MAX_DEPTH:
                line, col = position(child)
                raise YamlSyntaxError(line, col, f"YAML nesting deeper than {MAX_DEPTH} levels")
            _check_node(child)
            open_.add(id(child))
            stack.append((child, _children(child), 0))
        if total > MAX_NODES:
            line, col = position(at)
            raise YamlSyntaxError(line, col, f"more than {MAX_NODES} values with aliases expanded: refused")


def _check_node(node: Node) -> None:
    line, col = position(node)
    if isinstance(node, MappingNode):
        allowed: frozenset[str] | set[str] = {_MAP_TAG}
    elif isinstance(node, SequenceNode):
        allowed = {_SEQ_TAG}
    else:
        allowed = _SCALAR_TAGS
    if node.tag not in allowed:
        short = node.tag.replace("tag:yaml.org,2002:", "!!")
        if short in ("!!set", "!!omap", "!!pairs"):
            raise YamlSyntaxError(line, col, f"the tag '{short}' is not used in config or rule files")
        if node.tag.startswith("tag:yaml.org,2002:") and node.tag.rsplit(":", 1)[1] in _KNOWN_NAMES:
            raise YamlSyntaxError(line, col, f"the tag '{short}' does not fit {kind_name(node)} here")
        raise YamlSyntaxError(line, col, f"unknown tag '{short}' (only the standard YAML tags are read)")
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if k.tag == _MERGE and not (isinstance(v, MappingNode) or (
                    isinstance(v, SequenceNode) and all(isinstance(c, MappingNode) for c in v.value))):
                kl, kc = position(k)
                raise YamlSyntaxError(kl, kc, "a merge key '<<' takes a mapping or a list of mappings")
    elif isinstance(node, ScalarNode) and node.tag not in (_STR, _NULL):
        try:
            to_python(node)
        except Exception as exc:  # the constructors raise ValueError, OverflowError, ConstructorError…
            what = node.tag.rsplit(":", 1)[-1]
            reason = getattr(exc, "problem", None) or str(exc)
            raise YamlSyntaxError(line, col, f"not a valid {what}: '{node.value}' ({reason})") from None


def pairs(node: MappingNode) -> list[tuple[Node, Node]]:
    """A mapping's (key, value) pairs with merge keys (`<<: *base`) applied as PyYAML does:
    the mapping's own keys win over merged ones, an earlier merged mapping over a later one.
    Own duplicates are kept (callers report them); merged keys already present are dropped."""
    own = [(k, v) for k, v in node.value if k.tag != _MERGE]
    merged: list[tuple[Node, Node]] = []
    for k, v in node.value:
        if k.tag == _MERGE:
            for sub in (v.value if isinstance(v, SequenceNode) else [v]):
                if isinstance(sub, MappingNode):
                    merged += pairs(sub)
    seen = {k.value for k, _ in own if isinstance(k, ScalarNode)}
    out = list(own)
    for k, v in merged:
        key = k.value if isinstance(k, ScalarNode) else None
        if key is None or key not in seen:
            out.append((k, v))
            if key is not None:
                seen.add(key)
    return out


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
        out: list[tuple[Node, Node]] = []
        seen: set[str] = set()
        for knode, vnode in pairs(node):
            if not isinstance(knode, ScalarNode):
                self.error(knode, f"{what}: keys must be plain names")
                continue
            if knode.value in seen:
                self.error(knode, f"{what}: duplicate key '{knode.value}'")
                continue
            seen.add(knode.value)
            out.append((knode, vnode))
        return out

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
    problems: list[str] = field(default_factory=list)  # FILE:LINE:COL: duplicate keys

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
        own = {id(k) for k, _ in node.value}
        for key_node, value_node in pairs(node):
            k = to_python(key_node)
            if isinstance(k, (list, dict)):
                k = str(k)
            if k in out:  # only a mapping's own keys can repeat: merged ones already present are dropped
                line, col = position(key_node)
                pos.problems.append(f"{pos.file}:{line}:{col}: duplicate key '{k}' (first at "
                                    f"line {pos.key_marks[path + (k,)].line})")
                continue
            if id(key_node) in own or path + (k,) not in pos.key_marks:
                pos.key_marks[path + (k,)] = Mark(*position(key_node))
            out[k] = _walk(value_node, path + (k,), pos)
        return out
    if isinstance(node, SequenceNode):
        return [_walk(child, path + (i,), pos) for i, child in enumerate(node.value)]
    return to_python(node)


def load_with_positions(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one document into plain values plus the position of every key and value.

    Raises YamlSyntaxError (with line and column) on invalid YAML; a duplicate key is listed
    in `Positions.problems` (the first one counts), since a silent last-wins hides mistakes."""
    pos = Positions(file)
    node = compose(text)
    return (None if node is None else _walk(node, (), pos)), pos
