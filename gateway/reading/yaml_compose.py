"""Composing YAML safely: the node tree (nodes carry line/column marks) of a config or rule file,
audited before anything reads it (no alias cycle or expansion bomb, bounded nesting, only the
standard tags, every typed scalar constructible), and the small readers of nodes everyone uses.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "BOOL",
    "INT",
    "MAX_DEPTH",
    "MAX_NODES",
    "NULL",
    "YamlSyntaxError",
    "compose",
    "kind_name",
    "pairs",
    "position",
    "to_python",
]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"

# Config and rule files are small: these bounds are far above any real one and far below
# what hurts (a "billion laughs" of nested aliases, or a 100k-deep bracket nest).
MAX_NODES = 100_000  # nodes after expanding every alias
MAX_DEPTH = 200


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


_constructor = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
# The tags a config or rule file can use, by node kind: the YAML 1.1 core of SafeLoader.
# (!!set, !!omap, !!pairs are standard too but mean nothing here, and construct lazily.)
_SCALAR_TAGS = frozenset(
    {_STR, NULL, BOOL, INT, "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
)
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
    before = text[: m.start()]
    line = before.count("\n") + 1
    col = m.start() - (before.rfind("\n") + 1) + 1
    raise YamlSyntaxError(
        line, col, f"control character U+{ord(m.group()):04X} is not allowed in YAML (write it escaped in a double-quoted string)"
    )


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
            if k.tag == _MERGE and not (
                isinstance(v, MappingNode) or (isinstance(v, SequenceNode) and all(isinstance(c, MappingNode) for c in v.value))
            ):
                kl, kc = position(k)
                raise YamlSyntaxError(kl, kc, "a merge key '<<' takes a mapping or a list of mappings")
    elif isinstance(node, ScalarNode) and node.tag not in (_STR, NULL):
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
            for sub in v.value if isinstance(v, SequenceNode) else [v]:
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


def kind_name(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL:
        return "nothing"
    if node.tag == BOOL:
        return "true/false"
    if node.tag == INT:
        return "a number"
    return f"'{node.value}'"
