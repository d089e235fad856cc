"""Conditions on the message's content and nature: size, attachments, automated (auto-reply,
bounce, list, bulk) and forwarded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.engine.condition_base import Condition, condition
from gateway.reading.yamlpos import Checker, kind_name, to_python

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation


__all__ = ["AUTOMATED_KINDS", "Attachments", "Automated", "ForwardedTest", "Size", "parse_size"]

# -- size, attachments, automated ----------------------------------------------------------


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}


def parse_size(node: Node, chk: Checker, what: str) -> int | None:
    """`10MB`, `1K`, `512`: K/KB, M/MB, G/GB are powers of 1024."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:int":
        return int(to_python(node))
    m = _SIZE.match(node.value) if isinstance(node, ScalarNode) else None
    if not m:
        chk.error(node, f"{what}: expected a size like 10MB or 512KB, not {kind_name(node)}")
        return None
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").upper()])


def _human(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"


@condition("size")
class Size(Condition):
    SIZE = {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": _SIZE.pattern}]}
    schema_value = {
        "type": "object",
        "properties": {"over": SIZE, "under": SIZE},
        "minProperties": 1,
        "additionalProperties": False,
    }

    def __init__(self, over: int | None, under: int | None) -> None:
        self.over, self.under = over, under

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        pairs = chk.mapping(node, "size")
        if pairs is None:
            return None
        got = chk.keys(pairs, ("over", "under"), "size")
        if not got:
            chk.error(node, "size: give over or under")
            return None
        sizes = {k: parse_size(v, chk, f"size.{k}") for k, v in got.items()}
        if any(v is None for v in sizes.values()):
            return None
        return cls(sizes.get("over"), sizes.get("under"))

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        n = ev.message.raw_size
        parts, held = [], True
        if self.over is not None:
            held &= n > self.over
            parts.append(f"over {_human(self.over)}")
        if self.under is not None:
            held &= n < self.under
            parts.append(f"under {_human(self.under)}")
        return held, f"size {n} bytes {'is' if held else 'is not'} {' and '.join(parts)}"


@condition("attachments")
class Attachments(Condition):
    schema_value = {
        "oneOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "properties": {"over": {"type": "integer", "minimum": 0}, "under": {"type": "integer", "minimum": 0}},
                "minProperties": 1,
                "additionalProperties": False,
            },
        ]
    }

    def __init__(self, want: bool | None, over: int | None = None, under: int | None = None) -> None:
        self.want, self.over, self.under = want, over, under

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        if isinstance(node, MappingNode):
            pairs = chk.mapping(node, "attachments")
            got = chk.keys(pairs or [], ("over", "under"), "attachments")
            if not got:
                if pairs is not None and not pairs:
                    chk.error(node, "attachments: give over or under")
                return None
            nums: dict[str, int] = {}
            for k, v in got.items():
                if not (isinstance(v, ScalarNode) and v.tag == "tag:yaml.org,2002:int"):
                    chk.error(v, f"attachments.{k} must be a number, not {kind_name(v)}")
                    return None
                nums[k] = int(to_python(v))
            return cls(None, nums.get("over"), nums.get("under"))
        b = chk.boolean(node, "attachments")
        return None if b is None else cls(b)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        n = len(ev.message.counted_attachments)
        inline = len(ev.message.attachments) - n
        note = f" ({inline} inline not counted)" if inline else ""
        if self.want is not None:
            return (n > 0) == self.want, f"{n} attachment(s){note}, wanted {'some' if self.want else 'none'}"
        held = (self.over is None or n > self.over) and (self.under is None or n < self.under)
        bounds = " and ".join(f"{w} {v}" for w, v in (("over", self.over), ("under", self.under)) if v is not None)
        return held, f"{n} attachment(s){note} {'is' if held else 'is not'} {bounds}"


AUTOMATED_KINDS = ("auto_reply", "bounce", "list", "bulk")


@condition("automated")
class Automated(Condition):
    schema_value = {"oneOf": [{"type": "boolean"}, {"type": "array", "minItems": 1, "items": {"enum": list(AUTOMATED_KINDS)}}]}

    def __init__(self, want: bool, kinds: tuple[str, ...] = AUTOMATED_KINDS) -> None:
        self.want, self.kinds = want, kinds

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        if isinstance(node, (SequenceNode, ScalarNode)) and not (
            isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool"
        ):
            items = node.value if isinstance(node, SequenceNode) else [node]
            kinds = [chk.choice(i, AUTOMATED_KINDS, "automated") for i in items]
            if not items:
                chk.error(node, "automated: empty list")
                return None
            if any(k is None for k in kinds):
                return None
            return cls(True, tuple(k for k in kinds if k))
        b = chk.boolean(node, "automated")
        return None if b is None else cls(b)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        verdicts = [v for v in ev.automated() if v.kind in self.kinds]
        if verdicts:
            evidence = ", ".join(f"{v.kind} ({v.header})" for v in verdicts)
            return self.want, f"automated: {evidence}"
        what = "not automated" if self.kinds == AUTOMATED_KINDS else f"not {', '.join(self.kinds)}"
        return not self.want, f"automated: {what}"


@condition("forwarded")
class ForwardedTest(Condition):
    """`forwarded: true` — the mail carries a forwarded original whose sender is readable
    (a message/rfc822 part or a forwarded-header block; see engine/forwarded.py)."""

    schema_value = {"type": "boolean"}

    def __init__(self, want: bool) -> None:
        self.want = want

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        b = chk.boolean(node, "forwarded")
        return None if b is None else cls(b)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        fwd = ev.forwarded()
        if fwd is None:
            return not self.want, "forwarded: no forwarded original with a sender"
        who = ", ".join(a.address for a in fwd.senders)
        return self.want, f"forwarded: original sender {who} ({fwd.evidence})"
