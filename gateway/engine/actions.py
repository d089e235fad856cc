"""Action kinds (RULES.md "Actions"), one small class each, registered by YAML key.

Options are pydantic models (strict, no extra keys): they validate the YAML value and give the
JSON Schema; their errors are mapped back to the YAML node's line and column. `apply` changes
the `Evaluation` and traces what it found or planned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from yaml.nodes import Node, ScalarNode

from gateway.crm.base import PARTY_KINDS, PartyData, PartyKind, PartyRef
from gateway.engine.model import PlannedCreate, Target
from gateway.engine.state import WHO, account_name, party_data_for
from gateway.yamlpos import Checker, did_you_mean, is_null, kind_name, node_at, to_python

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation
    from gateway.message import Address

ACTIONS: dict[str, type[Action]] = {}


def action(key: str) -> Callable[[type[Action]], type[Action]]:
    """Register an action class under its YAML key; a duplicate fails at import."""

    def decorate(cls: type[Action]) -> type[Action]:
        if key in ACTIONS:
            raise RuntimeError(f"action {key!r} registered twice")
        cls.key = key
        ACTIONS[key] = cls
        return cls

    return decorate


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Action:
    key: ClassVar[str] = ""
    Options: ClassVar[type[Args] | None] = None  # None: the value is parsed by `parse_value`
    shorthand: ClassVar[str | None] = None  # `skip: TEXT` means `skip: {reason: TEXT}`
    provides_records: ClassVar[bool] = False  # find/create: an attach may follow
    needs_records: ClassVar[bool] = False  # attach
    on_error_ok: ClassVar[bool] = False  # allowed in on_error

    def __init__(self, options: Any) -> None:
        self.options = options

    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if cls.Options is None:
            raise NotImplementedError
        return _parse_options(cls, node, chk)

    @classmethod
    def check_options(cls, options: Any, node: Node | None, chk: Checker) -> None:
        """Checks the options model cannot express, reported through `chk`."""

    def apply(self, ev: Evaluation) -> str:
        """Change the evaluation; return what happened, for the trace."""
        raise NotImplementedError

    @classmethod
    def schema(cls) -> dict[str, Any]:
        assert cls.Options is not None
        s = cls.Options.model_json_schema()
        s.pop("title", None)
        for prop in s.get("properties", {}).values():
            prop.pop("title", None)
        if not s.get("required"):
            s = {"oneOf": [s, {"type": "null"}]}
        if cls.shorthand:
            s = {"oneOf": [s, {"type": "string"}]}
        return s


def _parse_options(cls: type[Action], node: Node | None, chk: Checker) -> Action | None:
    assert cls.Options is not None
    what = cls.key
    if node is None or is_null(node):
        value: Any = {}
    elif isinstance(node, ScalarNode) and cls.shorthand and node.tag != "tag:yaml.org,2002:bool":
        value = {cls.shorthand: node.value}
    else:
        value = to_python(node)
        if not isinstance(value, dict):
            assert node is not None
            chk.error(node, f"{what} takes a mapping of options, not {kind_name(node)}")
            return None
    try:
        options = cls.Options.model_validate(value)
    except ValidationError as exc:
        assert node is not None or not value
        for err in exc.errors():
            _report(chk, cls, node, err)
        return None
    problems_before = len(chk.problems)
    cls.check_options(options, node, chk)
    if len(chk.problems) > problems_before:
        return None
    return cls(options)


def _report(chk: Checker, cls: type[Action], node: Node | None, err: Any) -> None:
    loc = [p for p in err["loc"] if isinstance(p, (str, int))]
    what = cls.key
    assert cls.Options is not None
    fields = list(cls.Options.model_fields)
    if node is None:
        return
    if err["type"] == "extra_forbidden":
        name = str(loc[-1])
        chk.error(node_at(node, loc, key=True), f"unknown option '{name}' for {what}{did_you_mean(name, fields)}")
        return
    target = node_at(node, loc)
    field = str(loc[0]) if loc else ""
    if err["type"] == "missing":
        chk.error(node, f"{what}: missing '{field}'")
    elif err["type"] == "literal_error":
        allowed = [str(v).strip("'") for v in re.findall(r"'([^']*)'", err["ctx"]["expected"])]
        bad = err["input"]
        if field in ("kind", "kinds"):
            chk.error(target, f"unknown record kind '{bad}'{did_you_mean(str(bad), PARTY_KINDS)}")
        else:
            chk.error(target, f"{what}.{field}: '{bad}' is not one of {', '.join(allowed)}{did_you_mean(str(bad), allowed)}")
    else:
        hint = ""
        if isinstance(err.get("input"), dict) and field == "fields":
            hint = " (quote templates: '{from.name}')"
        path = ".".join(str(p) for p in loc)
        chk.error(target, f"{what}.{path}: {err['msg']}{hint}")


Who = Literal["sender", "counterpart", "recipients", "participants", "original_sender"]
assert set(Who.__args__) == set(WHO)  # type: ignore[attr-defined]


# -- find / create / link_account ----------------------------------------------------------


class FindOptions(Args):
    who: Who = "sender"
    kinds: list[PartyKind] = Field(default_factory=lambda: list(PARTY_KINDS), min_length=1)
    pick: Literal["unique", "newest", "all"] = "unique"
    by_domain: bool = True  # also look the domain's accounts up (found_by_domain)


def _kinds_text(kinds: Sequence[str]) -> str:
    return ", ".join(kinds)


@action("find")
class Find(Action):
    Options = FindOptions
    provides_records = True

    def apply(self, ev: Evaluation) -> str:
        o: FindOptions = self.options
        notes = []
        for a in ev.who(o.who, "find"):
            hits = ev.lookup(a, o.kinds)
            by_kind = {k: [r for r in hits if r.kind == k] for k in o.kinds}
            kind = next((k for k in o.kinds if by_kind[k]), None)  # kinds are the precedence
            if kind is None:
                notes.append(f"{a.address}: no {_kinds_text(o.kinds)}")
            elif o.pick == "unique" and len(by_kind[kind]) > 1:
                if a.key in ev.plan.found:
                    notes.append(f"{a.address}: {len(by_kind[kind])} {kind}s, already found earlier")
                else:
                    ev.mark_ambiguous(a, by_kind[kind], kind)
                    labels = ", ".join(r.label() for r in by_kind[kind])
                    notes.append(f"{a.address}: ambiguous, {len(by_kind[kind])} {kind}s ({labels}) → review")
            else:
                chosen = by_kind[kind]
                if o.pick == "newest":
                    chosen = [_newest(chosen)]
                ev.add_found(a, chosen)
                notes.append(f"{a.address}: found {', '.join(r.label() for r in chosen)}"
                             + (f" (newest of {len(by_kind[kind])} {kind}s)" if len(by_kind[kind]) > len(chosen) else ""))
            if kind is not None:  # every match is said, also those the kinds' order set aside
                passed = [r for k in o.kinds if k != kind for r in by_kind[k]]
                if passed:
                    notes[-1] += (f"; also matches {', '.join(_named(r) for r in passed)}, not used: "
                                  f"{kind} comes first in kinds [{', '.join(o.kinds)}]")
            if o.by_domain and a.domain:
                if ev.is_freemail(a.domain):
                    notes.append(f"{a.domain} is freemail: no account by domain")
                else:
                    accounts = ev.lookup_domain(a.domain)
                    if accounts:
                        notes.append(f"{a.domain}: accounts by domain {', '.join(r.label() for r in accounts)}")
        if not notes:
            return f"find {o.who}: no address to look up"
        return f"find {o.who} among {_kinds_text(o.kinds)} (pick {o.pick}): " + "; ".join(notes)


def _named(r: PartyRef) -> str:
    return f"{r.label()} '{r.name}'" if r.name else r.label()


def _newest(refs: list[PartyRef]) -> PartyRef:
    def order(item: tuple[int, PartyRef]) -> tuple[bool, Any, int]:
        i, r = item
        return (r.created_at is not None, r.created_at.timestamp() if r.created_at else 0, i)

    return max(enumerate(refs), key=order)[1]


TEMPLATE_NAMES = ("from.name", "from.address", "from.domain", "subject", "mailbox")
_TEMPLATE = re.compile(r"\{([^{}]*)\}")


class CreateOptions(Args):
    kind: PartyKind
    who: Who = "sender"
    fields: dict[str, str] = Field(default_factory=dict)
    allow_automated: bool = False


def render(template: str, ev: Evaluation) -> str:
    first = (ev.message.from_ or ev.message.sender or (None,))[0]
    values = {
        "from.name": first.name if first else "",
        "from.address": first.address if first else "",
        "from.domain": first.domain if first else "",
        "subject": ev.message.subject,
        "mailbox": ev.ctx.mailbox,
    }
    return _TEMPLATE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@action("create")
class Create(Action):
    Options = CreateOptions
    provides_records = True

    @classmethod
    def check_options(cls, options: Any, node: Node | None, chk: Checker) -> None:
        for name, template in options.fields.items():
            for placeholder in _TEMPLATE.findall(template):
                if placeholder not in TEMPLATE_NAMES:
                    at = node_at(node, ["fields", name]) if node is not None else None
                    if at is not None:
                        chk.error(at, f"create.fields.{name}: unknown placeholder '{{{placeholder}}}'"
                                      f"{did_you_mean(placeholder, TEMPLATE_NAMES)}")

    def apply(self, ev: Evaluation) -> str:
        o: CreateOptions = self.options
        if not o.allow_automated:
            verdicts = ev.automated()
            if verdicts:
                why = ", ".join(f"{v.kind} ({v.header})" for v in verdicts)
                return f"create {o.kind}: nothing, the mail is automated: {why}"
        fields = {k: render(v, ev) for k, v in o.fields.items()}
        notes = [self._one(ev, a, o, fields) for a in ev.who(o.who, "create")]
        return f"create {o.kind} for {o.who}: " + ("; ".join(notes) if notes else "no address")

    def _one(self, ev: Evaluation, a: Address, o: CreateOptions, fields: dict[str, str]) -> str:
        if a.key in ev.ambiguous:
            return f"{a.address}: ambiguous, nothing created"
        if not ev.known(a) and a.key not in ev.looked_up:
            # No find looked this address up: do it now rather than create a duplicate.
            ev.add_found(a, ev.lookup(a, PARTY_KINDS))
        if ev.known(a):
            have = [r.label() for r in ev.plan.found.get(a.key, [])] + [f"new:{k}" for k in ev.created.get(a.key, [])]
            return f"{a.address}: has {', '.join(have)}, nothing created"
        if o.kind == "account":
            return self._account(ev, a, fields)
        data = party_data_for(o.kind, a, freemail=ev.is_freemail(a.domain), fields=fields)
        key = f"create:{o.kind}:{a.key}"
        ev.add_create(PlannedCreate(key, o.kind, a.address, data, ev.rule), [a.key])
        return f"{a.address}: new {o.kind} '{' '.join(p for p in (data.first_name, data.last_name) if p)}' ({key})"

    def _account(self, ev: Evaluation, a: Address, fields: dict[str, str]) -> str:
        domain = a.domain
        if not domain or ev.is_freemail(domain):
            return f"{a.address}: no account for freemail domain {domain or '(none)'}"
        existing = ev.lookup_domain(domain)
        if existing:
            # The account exists: it is this address's record rather than a duplicate.
            ev.add_found(a, existing)
            return f"{a.address}: account for {domain} exists ({', '.join(r.label() for r in existing)}), using it"
        key = f"create:account:{domain}"
        if key in ev.creates:
            ev.created.setdefault(a.key, []).append(key)
            return f"{a.address}: account for {domain} already planned ({key})"
        data = party_data_for("account", a, freemail=False, fields=fields)
        name = data.name
        ev.add_create(PlannedCreate(key, "account", domain, data, ev.rule), [a.key, domain])
        return f"{a.address}: new account '{name}' for {domain} ({key})"


class LinkAccountOptions(Args):
    create: bool = False


@action("link_account")
class LinkAccount(Action):
    Options = LinkAccountOptions

    def apply(self, ev: Evaluation) -> str:
        notes = []
        for c in list(ev.creates.values()):
            if c.kind == "account" or c.account is not None:
                continue
            domain = c.address.rpartition("@")[2].lower()
            if not domain or ev.is_freemail(domain):
                continue
            accounts = ev.lookup_domain(domain)
            target: Target | None = None
            if len(accounts) == 1:
                target = Target(ref=accounts[0])
            elif len(accounts) > 1:
                notes.append(f"{c.address}: {len(accounts)} accounts for {domain}, not linked")
                continue
            elif f"create:account:{domain}" in ev.creates:
                target = Target(create_key=f"create:account:{domain}")
            elif self.options.create:
                key = f"create:account:{domain}"
                data = PartyData(kind="account", name=account_name(domain), domain=domain)
                ev.add_create(PlannedCreate(key, "account", domain, data, ev.rule), [domain])
                target = Target(create_key=key)
            if target is None:
                notes.append(f"{c.address}: no account for {domain}")
                continue
            data = replace(c.data, account=target.ref) if target.ref else c.data
            ev.replace_create(replace(c, data=data, account=target))
            notes.append(f"{c.address} → {target.label()}")
        return "link_account: " + ("; ".join(notes) if notes else "no new contact or lead to link")


# -- attach / review -----------------------------------------------------------------------

AttachTo = Literal["found", "created", "domain", "all"]


class AttachOptions(Args):
    to: AttachTo | list[AttachTo] = "all"  # all = found + created; domain = found_by_domain
    attachments: bool = True
    thread: bool = True
    if_none: Literal["review", "skip", "error"] = "review"


@action("attach")
class Attach(Action):
    Options = AttachOptions
    needs_records = True

    def apply(self, ev: Evaluation) -> str:
        o: AttachOptions = self.options
        to = {o.to} if isinstance(o.to, str) else set(o.to)
        if "all" in to:
            to |= {"found", "created"}
        targets: list[Target] = []
        if "found" in to:
            for k, refs in ev.plan.found.items():
                if k not in ev.ambiguous:
                    targets += [Target(ref=r) for r in refs]
        if "created" in to:
            targets += [Target(create_key=k) for k in ev.creates]
        if "domain" in to:
            for refs in ev.plan.found_by_domain.values():
                targets += [Target(ref=r) for r in refs]
        notes = []
        if o.thread and ev.message.thread_ids:
            parents = ev.crm.thread_parents(list(ev.message.thread_ids))
            if parents:
                targets += [Target(ref=r) for r in parents]
                notes.append(f"thread on {', '.join(r.label() for r in parents)}")
        unique = list(dict.fromkeys(targets))
        if not unique:
            if o.if_none == "review":
                ev.review("no record to attach to")
                return "attach: no record to attach to → review"
            if o.if_none == "skip":
                ev.skip("no record to attach to")
                return "attach: no record to attach to → skip"
            ev.note("action", "attach: no record to attach to → error")
            ev.fail("attach: no record to attach to")
        ev.add_attach(unique, o.attachments)
        extra = f" ({'; '.join(notes)})" if notes else ""
        return f"attach to {', '.join(t.label() for t in unique)}{extra}" + (
            "" if o.attachments else ", without attachments")


class ReviewOptions(Args):
    reason: str = "review requested by rule"


@action("review")
class Review(Action):
    Options = ReviewOptions
    shorthand = "reason"

    def apply(self, ev: Evaluation) -> str:
        ev.review(self.options.reason)
        return f"review: {self.options.reason}"


# -- tags, move, assign, skip, stop --------------------------------------------------------


class _Names(Action):
    on_error_ok = True
    schema_value: ClassVar[dict[str, Any]] = {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}

    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if node is None or is_null(node):
            if node is not None:
                chk.error(node, f"{cls.key} needs a tag name or a list of them")
            return None
        got = chk.strings(node, cls.key)
        if got is None:
            return None
        if cls.key == "tag" and chk.labels_are_folders:
            watched = {f.casefold(): f for f in chk.watched_folders}
            for name, n in got:
                if name.casefold() in watched:
                    chk.error(n, f"tag '{name}' is the watched folder '{watched[name.casefold()]}': "
                                 "on this server labels are folders, so the tag would file the mail there again")
                    return None
        return cls(tuple(name for name, _ in got))

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return cls.schema_value


@action("tag")
class Tag(_Names):
    def apply(self, ev: Evaluation) -> str:
        ev.tag(self.options)
        return f"tag {', '.join(self.options)}"


@action("untag")
class Untag(_Names):
    def apply(self, ev: Evaluation) -> str:
        ev.untag(self.options)
        return f"untag {', '.join(self.options)}"


@action("move")
class Move(Action):
    on_error_ok = True

    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if node is None:
            return None
        got = chk.string(node, "move")
        return None if got is None else cls(got)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}

    def apply(self, ev: Evaluation) -> str:
        ev.plan.move = self.options
        return f"move to '{self.options}' (after tagging)"


class AssignOptions(Args):
    owner: str  # "mailbox" or a CRM user's address


@action("assign")
class Assign(Action):
    Options = AssignOptions
    shorthand = "owner"

    def apply(self, ev: Evaluation) -> str:
        owner = ev.ctx.mailbox if self.options.owner == "mailbox" else self.options.owner
        ev.assign_owner = owner
        return f"assign created records to {owner}"


class SkipOptions(Args):
    reason: str = "skipped by rule"


@action("skip")
class Skip(Action):
    Options = SkipOptions
    shorthand = "reason"

    def apply(self, ev: Evaluation) -> str:
        ev.skip(self.options.reason)
        return f"skip: {self.options.reason} (nothing planned is executed)"


@action("stop")
class Stop(Action):
    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if node is not None and not is_null(node):
            chk.error(node, f"stop takes no options, not {kind_name(node)}")
            return None
        return cls(None)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"type": "null"}

    def apply(self, ev: Evaluation) -> str:
        ev.stopped = True
        return "stop"

