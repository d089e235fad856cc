"""The condition registry and what every condition kind shares: the `Condition` base class,
tracing one evaluation (`check`), the string-list base (`Names`) and the small wording helpers
the kinds use in their trace lines. The kinds live in conditions_*.py;
gateway/engine/conditions.py assembles them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from yaml.nodes import Node

from gateway.reading.yamlpos import Checker

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation


__all__ = ["CONDITIONS", "STRINGS_SCHEMA", "Condition", "Names", "check", "condition", "quoted", "short"]

CONDITIONS: dict[str, type[Condition]] = {}


def condition(*keys: str) -> Callable[[type[Condition]], type[Condition]]:
    """Register a condition class under one or more YAML keys; a duplicate fails at import."""

    def decorate(cls: type[Condition]) -> type[Condition]:
        for key in keys:
            if key in CONDITIONS:
                raise RuntimeError(f"condition {key!r} registered twice")
            CONDITIONS[key] = cls
        return cls

    return decorate


class Condition:
    key: str = ""
    schema_value: ClassVar[dict[str, Any]] = {}

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        raise NotImplementedError

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        raise NotImplementedError

    @classmethod
    def schema(cls, key: str) -> dict[str, Any]:
        return cls.schema_value


def check(ev: Evaluation, cond: Condition) -> bool:
    """Evaluate and trace one condition."""
    held, why = cond.evaluate(ev)
    ev.note("condition", why, held)
    return held


def quoted(values: Sequence[str]) -> str:
    return " or ".join(f"'{v}'" for v in values)


def short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


STRINGS_SCHEMA = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}


class Names(Condition):
    """A condition whose value is one name or a list of names."""

    schema_value = STRINGS_SCHEMA

    def __init__(self, key: str, names: tuple[str, ...]) -> None:
        self.key, self.names = key, names

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        got = chk.strings(node, key)
        return None if got is None else cls(key, tuple(s for s, _ in got))

    def verdict(self, actual: str, hit: str | None) -> tuple[bool, str]:
        if hit is not None:
            return True, f"{self.key} '{actual}' is '{hit}'"
        return False, f"{self.key} '{actual}' is not {quoted(self.names)}"
