"""Positions by path: config.yaml is validated by pydantic, whose errors name a path of keys
and indexes; `Positions.at(path)` maps that path back to where it stands in the file.
`load_with_positions` reads one document into plain values and those positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from gateway.reading.yaml_compose import compose, pairs, position, to_python

__all__ = ["Mark", "Positions", "load_with_positions"]


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
                pos.problems.append(
                    f"{pos.file}:{line}:{col}: duplicate key '{k}' (first at line {pos.key_marks[path + (k,)].line})"
                )
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
