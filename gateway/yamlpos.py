"""YAML with positions: load a document and remember where every key and value stands.

Config and rule errors must name `FILE:LINE:COL`; pydantic reports a path of keys and
indexes, so `Positions.at(path)` maps that path back to the node it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


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
        """The closest known position for `path` (a pydantic `loc`), walking up when unknown."""
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


class YamlSyntaxError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: tuple[Any, ...], pos: Positions, constructor: yaml.SafeLoader) -> Any:
    pos.marks[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            k = constructor.construct_object(key_node, deep=True)
            if isinstance(k, (list, dict)):
                k = str(k)
            pos.key_marks[path + (k,)] = _mark(key_node)
            out[k] = _build(value_node, path + (k,), pos, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), pos, constructor) for i, child in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def load(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document; raise YamlSyntaxError with the position of the mistake."""
    pos = Positions(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, pos
        return _build(node, (), pos, loader), pos
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else f"{file}:1:1"
        raise YamlSyntaxError(where, f"YAML syntax error: {exc.problem or exc}") from None
    finally:
        loader.dispose()


def load_file(path: Path, shown_as: str | None = None) -> tuple[Any, Positions]:
    return load(path.read_text(encoding="utf-8"), shown_as or str(path))
