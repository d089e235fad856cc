"""Checking composed YAML with positions: `Checker` collects the problems of one file as
`FILE:LINE:COL: message` while its helpers read mappings, keys, strings, lists, booleans and
choices, saying what was wrong where; `did_you_mean` suggests the near name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.reading.yaml_compose import BOOL, NULL, kind_name, pairs, position, to_python

__all__ = ["Checker", "Problem", "did_you_mean", "is_null", "node_at"]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == NULL)


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

    def keys(
        self,
        pairs: Sequence[tuple[Node, Node]],
        allowed: Sequence[str],
        what: str,
        required: Sequence[str] = (),
        at: Node | None = None,
    ) -> dict[str, Node]:
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
        if not isinstance(node, ScalarNode) or node.tag == NULL:
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
        if not isinstance(node, ScalarNode) or node.tag != BOOL:
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
