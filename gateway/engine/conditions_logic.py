"""Composing conditions: parsing a `when` mapping (several keys hold when all hold), the
combinators all, any and not, and evaluating a rule's `when`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yaml.nodes import Node, SequenceNode

from gateway.engine.condition_base import CONDITIONS, Condition, check, condition
from gateway.reading.yamlpos import Checker, did_you_mean, kind_name

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation


__all__ = ["AllOf", "AnyOf", "Not", "evaluate_when", "parse_condition"]


def parse_condition(node: Node, chk: Checker, what: str = "when") -> Condition | None:
    pairs = chk.mapping(node, what)
    if pairs is None:
        return None
    if not pairs:
        chk.error(node, f"{what}: empty condition")
        return None
    parts: list[Condition] = []
    ok = True
    for knode, vnode in pairs:
        cls = CONDITIONS.get(knode.value)
        if cls is None:
            chk.error(knode, f"unknown condition '{knode.value}'{did_you_mean(knode.value, CONDITIONS)}")
            ok = False
            continue
        cond = cls.parse(knode.value, vnode, chk)
        if cond is None:
            ok = False
        else:
            parts.append(cond)
    if not ok:
        return None
    return parts[0] if len(parts) == 1 else AllOf("all", tuple(parts), implicit=True)


class _Composite(Condition):
    schema_value = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/condition"}}

    def __init__(self, key: str, parts: tuple[Condition, ...], implicit: bool = False) -> None:
        self.key, self.parts, self.implicit = key, parts, implicit

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        if not isinstance(node, SequenceNode) or not node.value:
            chk.error(node, f"{key} takes a non-empty list of conditions, not {kind_name(node)}")
            return None
        parts = [parse_condition(item, chk, key) for item in node.value]
        if any(p is None for p in parts):
            return None
        return cls(key, tuple(p for p in parts if p is not None))


@condition("all")
class AllOf(_Composite):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        for i, part in enumerate(self.parts):  # Sieve allof: stops at the first that fails
            if not check(ev, part):
                return False, f"all: condition {i + 1} of {len(self.parts)} failed"
        return True, f"all: {len(self.parts)} of {len(self.parts)} held"


@condition("any")
class AnyOf(_Composite):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        for i, part in enumerate(self.parts):
            if check(ev, part):
                return True, f"any: condition {i + 1} of {len(self.parts)} held"
        return False, f"any: none of {len(self.parts)} held"


@condition("not")
class Not(Condition):
    schema_value = {"$ref": "#/$defs/condition"}

    def __init__(self, part: Condition) -> None:
        self.part = part

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        part = parse_condition(node, chk, "not")
        return None if part is None else cls(part)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        held = check(ev, self.part)
        return not held, f"not: inner condition {'held' if held else 'did not hold'}"


def evaluate_when(ev: Evaluation, cond: Condition) -> bool:
    """A rule's `when`: an implicit all (several keys) traces its parts only."""
    if isinstance(cond, AllOf) and cond.implicit:
        return all(check(ev, p) for p in cond.parts)
    return check(ev, cond)
