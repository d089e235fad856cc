"""Match tests shared by the address, text and header conditions (RULES.md "Matching"):
`is`, `contains`, `matches` (Sieve glob), `regex` (RE2) and, for addresses only, `domain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2
from yaml.nodes import MappingNode, Node, SequenceNode

from gateway.engine.regex import BadRegex, Pattern, compile_re2
from gateway.message import addresses
from gateway.reading.yamlpos import Checker, did_you_mean

__all__ = ["MATCH_OPS", "Match", "Test", "match_schema", "parse_match", "parse_match_mapping"]


MATCH_OPS = ("is", "contains", "matches", "regex", "domain")


def _glob(pattern: str) -> Pattern:
    """Sieve :matches — `*` any run, `?` one character, `\\` escapes; case-insensitive.

    Compiled with RE2 too: `*a*a*a*b` is polynomial in a backtracking engine."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re2.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re2.escape(c))
        i += 1
    return compile_re2("".join(out), dot_nl=True)


@dataclass(frozen=True)
class Test:
    op: str
    value: str
    pattern: Pattern | None = None

    def describe(self) -> str:
        return f"{self.op} '{self.value}'"

    def matches(self, subject: str, address: bool) -> bool:
        if self.op == "is":
            if address:
                return addresses.key(subject) == addresses.key(self.value)
            return subject.casefold() == self.value.casefold()
        if self.op == "contains":
            return self.value.casefold() in subject.casefold()
        if self.op == "matches":
            assert self.pattern is not None
            return self.pattern.fullmatch(addresses.key(subject) if address else subject) is not None
        if self.op == "regex":
            assert self.pattern is not None
            return self.pattern.search(subject) is not None
        if self.op == "domain":
            return addresses.in_domain(subject, self.value)
        raise ValueError(self.op)


@dataclass(frozen=True)
class Match:
    """Any of its tests matches."""

    tests: tuple[Test, ...]

    def first(self, subject: str, address: bool) -> Test | None:
        return next((t for t in self.tests if t.matches(subject, address)), None)

    def describe(self) -> str:
        return " or ".join(t.describe() for t in self.tests)


def parse_match(node: Node, chk: Checker, what: str, *, address: bool) -> Match | None:
    tests: list[Test] = []
    items = node.value if isinstance(node, SequenceNode) else [node]
    if isinstance(node, SequenceNode) and not items:
        chk.error(node, f"{what}: empty list")
        return None
    ok = True
    for item in items:
        if isinstance(item, MappingNode):
            got = parse_match_mapping(item, chk, what, address=address)
        else:
            s = chk.string(item, what)
            got = None if s is None else [Test("is", s)]
        if got is None:
            ok = False
        else:
            tests.extend(got)
    return Match(tuple(tests)) if ok else None


def parse_match_mapping(
    node: MappingNode, chk: Checker, what: str, *, address: bool, extra: Sequence[str] = ()
) -> list[Test] | None:
    pairs = chk.mapping(node, what)
    if pairs is None:
        return None
    ops = [(k, v) for k, v in pairs if k.value not in extra]
    allowed = MATCH_OPS if address else MATCH_OPS[:-1]
    bad = [k for k, _ in ops if k.value not in allowed]
    for k in bad:
        hint = " (domain applies to address tests only)" if k.value == "domain" else did_you_mean(k.value, allowed)
        chk.error(k, f"unknown match '{k.value}' in {what}{hint}")
    if bad:
        return None
    if len(ops) != 1:
        chk.error(node, f"{what}: exactly one of {', '.join(allowed)} is needed, found {len(ops)}")
        return None
    knode, vnode = ops[0]
    values = chk.strings(vnode, f"{what}.{knode.value}")
    if values is None:
        return None
    tests: list[Test] = []
    ok = True
    for value, vn in values:
        pattern = None
        if knode.value == "regex":
            try:
                pattern = compile_re2(value)
            except BadRegex as exc:
                chk.error(vn, f"bad regex '{value}': {exc}")
                ok = False
                continue
        elif knode.value == "matches":
            pattern = _glob(value)
        tests.append(Test(knode.value, value, pattern))
    return tests if ok else None


def match_schema(address: bool) -> dict[str, Any]:
    strs = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
    ops = MATCH_OPS if address else MATCH_OPS[:-1]
    one = {
        "oneOf": [{"type": "string"}]
        + [{"type": "object", "properties": {op: strs}, "required": [op], "additionalProperties": False} for op in ops]
    }
    return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1}]}
