"""Condition kinds (RULES.md "Conditions"), one small class each, registered by YAML key.

Each class parses its YAML value (reporting problems with positions through a `Checker`),
evaluates to `(held, why)` — the `why` goes into the trace — and describes its JSON Schema.
A `when` mapping with several keys holds when all of them hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import re2
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway import addresses
from gateway.engine.regex import BadRegex, Pattern, compile_re2
from gateway.yamlpos import Checker, did_you_mean, kind_name, to_python

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation

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


def check(ev: Evaluation, cond: Condition) -> bool:
    """Evaluate and trace one condition."""
    held, why = cond.evaluate(ev)
    ev.note("condition", why, held)
    return held


def _q(values: Sequence[str]) -> str:
    return " or ".join(f"'{v}'" for v in values)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- MATCH ---------------------------------------------------------------------------------

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
            got = _parse_match_mapping(item, chk, what, address=address)
        else:
            s = chk.string(item, what)
            got = None if s is None else [Test("is", s)]
        if got is None:
            ok = False
        else:
            tests.extend(got)
    return Match(tuple(tests)) if ok else None


def _parse_match_mapping(node: MappingNode, chk: Checker, what: str, *, address: bool,
                         extra: Sequence[str] = ()) -> list[Test] | None:
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
    one = {"oneOf": [{"type": "string"}] + [
        {"type": "object", "properties": {op: strs}, "required": [op], "additionalProperties": False} for op in ops
    ]}
    return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1}]}


STRINGS_SCHEMA = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}


# -- where the message is ------------------------------------------------------------------


class _Names(Condition):
    schema_value = STRINGS_SCHEMA

    def __init__(self, key: str, names: tuple[str, ...]) -> None:
        self.key, self.names = key, names

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        got = chk.strings(node, key)
        return None if got is None else cls(key, tuple(s for s, _ in got))

    def _verdict(self, actual: str, hit: str | None) -> tuple[bool, str]:
        if hit is not None:
            return True, f"{self.key} '{actual}' is '{hit}'"
        return False, f"{self.key} '{actual}' is not {_q(self.names)}"


@condition("folder")
class FolderIs(_Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        folder = ev.ctx.folder
        hit = next((n for n in self.names if n == folder or (n.upper() == "INBOX" == folder.upper())), None)
        return self._verdict(folder, hit)


@condition("source")
class SourceIs(_Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        hit = next((n for n in self.names if n == ev.ctx.source), None)
        return self._verdict(ev.ctx.source, hit)


@condition("mailbox")
class MailboxIs(_Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        mine = [a for a in (ev.ctx.mailbox, *ev.ctx.owners) if a]
        for n in self.names:
            for a in mine:
                if addresses.key(a) == addresses.key(n):
                    return True, f"mailbox '{a}' is '{n}'"
        return False, f"mailbox '{ev.ctx.mailbox}' is not {_q(self.names)}"


@condition("direction")
class DirectionIs(Condition):
    schema_value = {"enum": ["inbound", "outbound"]}

    def __init__(self, want: str) -> None:
        self.want = want

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        got = chk.choice(node, ("inbound", "outbound"), key)
        return None if got is None else cls(got)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        why = "From or Sender is the owner" if ev.direction == "outbound" else "From/Sender is not the owner"
        return ev.direction == self.want, f"direction is {ev.direction} ({why}), wanted {self.want}"


# -- addresses and text --------------------------------------------------------------------

ADDRESS_KEYS = ("from", "to", "cc", "bcc", "reply_to", "sender", "recipients", "participants", "counterpart",
                "original_sender")


@condition(*ADDRESS_KEYS)
class AddressTest(Condition):
    def __init__(self, key: str, match: Match) -> None:
        self.key, self.match = key, match

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        m = parse_match(node, chk, key, address=True)
        return None if m is None else cls(key, m)

    @classmethod
    def schema(cls, key: str) -> dict[str, Any]:
        return {"$ref": "#/$defs/address_match"}

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        # `sender` as a header test is the Sender header, else (RFC 5322 3.6.2) the From.
        m = ev.message
        found = list(m.sender or m.from_) if self.key == "sender" else ev.addresses(self.key)
        for a in found:
            t = self.match.first(a.address, True)
            if t is not None:
                return True, f"{self.key} {a.address} {t.describe()}"
        if not found:
            return False, f"{self.key}: no address (wanted {self.match.describe()})"
        shown = ", ".join(a.address for a in found[:5])
        return False, f"{self.key} {shown}: none {self.match.describe()}"


@condition("subject", "body")
class TextTest(Condition):
    def __init__(self, key: str, match: Match) -> None:
        self.key, self.match = key, match

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        m = parse_match(node, chk, key, address=False)
        return None if m is None else cls(key, m)

    @classmethod
    def schema(cls, key: str) -> dict[str, Any]:
        return {"$ref": "#/$defs/text_match"}

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        text = ev.message.subject if self.key == "subject" else ev.message.text
        t = self.match.first(text, False)
        if t is not None:
            return True, f"{self.key} '{_short(text)}' {t.describe()}"
        return False, f"{self.key} '{_short(text)}' not {self.match.describe()}"


@condition("header")
class HeaderTest(Condition):
    schema_value = {
        "type": "object",
        "properties": {"name": {"type": "string"}, **{op: STRINGS_SCHEMA for op in MATCH_OPS[:-1]}},
        "required": ["name"],
        "additionalProperties": False,
    }

    def __init__(self, name: str, match: Match) -> None:
        self.name, self.match = name, match

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        pairs = chk.mapping(node, "header")
        if pairs is None:
            return None
        name_node = next((v for k, v in pairs if k.value == "name"), None)
        if name_node is None:
            chk.error(node, "header: missing 'name'")
            return None
        name = chk.string(name_node, "header.name")
        assert isinstance(node, MappingNode)
        tests = _parse_match_mapping(node, chk, "header", address=False, extra=("name",))
        if name is None or tests is None:
            return None
        return cls(name, Match(tuple(tests)))

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        values = ev.message.header_values(self.name)
        for v in values:
            t = self.match.first(v, False)
            if t is not None:
                return True, f"header {self.name}: '{_short(v)}' {t.describe()}"
        if not values:
            return False, f"header {self.name}: absent"
        return False, f"header {self.name}: '{_short(values[0])}' not {self.match.describe()}"


@condition("exists")
class Exists(_Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        missing = [h for h in self.names if not ev.message.has_header(h)]
        if missing:
            return False, f"exists: header {', '.join(missing)} missing"
        return True, f"exists: {', '.join(self.names)} present"


@condition("tagged")
class Tagged(_Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        present = {t.casefold(): t for t in ev.ctx.tags_present}
        hit = next((n for n in self.names if n.casefold() in present), None)
        if hit is not None:
            return True, f"tagged '{present[hit.casefold()]}'"
        return False, f"not tagged {_q(self.names)}"


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
    schema_value = {"type": "object", "properties": {"over": SIZE, "under": SIZE},
                    "minProperties": 1, "additionalProperties": False}

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
    schema_value = {"oneOf": [{"type": "boolean"}, {
        "type": "object", "properties": {"over": {"type": "integer", "minimum": 0},
                                         "under": {"type": "integer", "minimum": 0}},
        "minProperties": 1, "additionalProperties": False}]}

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
        bounds = " and ".join(
            f"{w} {v}" for w, v in (("over", self.over), ("under", self.under)) if v is not None
        )
        return held, f"{n} attachment(s){note} {'is' if held else 'is not'} {bounds}"


AUTOMATED_KINDS = ("auto_reply", "bounce", "list", "bulk")


@condition("automated")
class Automated(Condition):
    schema_value = {"oneOf": [{"type": "boolean"}, {"type": "array", "minItems": 1,
                                                    "items": {"enum": list(AUTOMATED_KINDS)}}]}

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


@condition("known")
class Known(Condition):
    WHO = ("sender", "counterpart", "participants", "original_sender")
    schema_value = {"enum": list(WHO)}

    def __init__(self, who: str) -> None:
        self.who = who

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        got = chk.choice(node, cls.WHO, "known")
        return None if got is None else cls(got)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        found = [a for a in ev.addresses(self.who) if not ev.protected(a)]
        for a in found:
            if ev.known(a):
                refs = [r.label() for r in ev.plan.found.get(a.key, [])] + [
                    f"new:{k}" for k in ev.created.get(a.key, [])
                ]
                return True, f"known {self.who} {a.address}: {', '.join(refs)}"
        if not found:
            return False, f"known {self.who}: no address"
        return False, f"known {self.who}: {', '.join(a.address for a in found)} not found or planned"


# -- composition ---------------------------------------------------------------------------


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


__all__ = ["CONDITIONS", "Condition", "condition", "parse_condition", "evaluate_when", "check", "Match",
           "parse_match", "AUTOMATED_KINDS", "ADDRESS_KEYS"]

