"""The state of one message's evaluation: what conditions read and actions write.

`Evaluation` holds the message, the context, the CRM view and the Plan under construction,
plus the maps RULES.md names (`found`, `found_by_domain`, `created`). Conditions and actions
are small classes that call the helpers here; `plan.evaluate` drives them.

Maps are keyed by `addresses.key()` (normalised, case-folded address) and by domain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Literal

from gateway.crm.base import PartyData, PartyKind, PartyRef
from gateway.engine.forwarded import Forwarded, original_sender
from gateway.engine.model import (
    CrmView,
    EvalContext,
    Plan,
    PlannedAttach,
    PlannedCreate,
    PlannedNote,
    ReviewInfo,
    Target,
    TraceStep,
)
from gateway.errors import Permanent
from gateway.message import addresses
from gateway.message import parsing as message_module
from gateway.message.parsing import Address, Message

WHO = ("sender", "counterpart", "recipients", "participants", "original_sender")


_UNSET = object()


class RuleFailure(Permanent):
    """A rule cannot apply (`attach … if_none: error`): quarantine. `plan` holds the trace."""

    def __init__(self, message: str, plan: Plan) -> None:
        super().__init__(message)
        self.plan = plan


class Evaluation:
    def __init__(self, message: Message, ctx: EvalContext, crm: CrmView) -> None:
        self.message, self.ctx, self.crm = message, ctx, crm
        self.owner_keys = {addresses.key(a) for a in (*ctx.owners, ctx.mailbox) if a}
        self.intake_keys = {addresses.key(a) for a in ctx.intake_addresses if a}
        self.freemail = {d.lower() for d in ctx.freemail_domains}
        senders = (*message.from_, *message.sender)
        outbound = any(a.key in self.owner_keys for a in senders)
        self.direction: Literal["inbound", "outbound"] = "outbound" if outbound else "inbound"
        self.plan = Plan(outcome="ignored", direction=self.direction)
        self.rule = ""
        self.stopped = False
        self.skip_reason: str | None = None
        self.review_reasons: list[str] = []
        self.review_candidates: list[tuple[str, tuple[PartyRef, ...]]] = []
        self.ambiguous: dict[str, tuple[PartyRef, ...]] = {}
        self.creates: dict[str, PlannedCreate] = {}  # create key → create, in planning order
        self.created: dict[str, list[str]] = {}  # address key (or domain) → create keys
        self.looked_up: set[str] = set()
        self._lookups: dict[tuple[str, tuple[str, ...]], list[PartyRef]] = {}
        self._domains_looked: set[str] = set()
        self.targets: list[Target] = []
        self.attach_rules: list[str] = []
        self.attach_attachments = False
        self.attach_planned = False
        self.notes: list[PlannedNote] = []
        self.assign_owner: str | None = None
        self._automated: list[message_module.AutomatedVerdict] | None = None
        self._forwarded: object = _UNSET
        self.plan.counterparts = tuple(a.address for a in self.addresses("counterpart"))

    # -- trace --------------------------------------------------------------------------

    def note(self, event: str, detail: str, result: bool | None = None) -> None:
        self.plan.trace.append(TraceStep(self.rule, event, detail, result))

    # -- addresses ----------------------------------------------------------------------

    def addresses(self, which: str) -> list[Address]:
        """The message's addresses for a header test or a `who` (deduplicated, in order)."""
        m = self.message
        if which == "from":
            found: Iterable[Address] = m.from_
        elif which == "sender":
            found = m.from_ or m.sender
        elif which in ("to", "cc", "bcc", "reply_to"):
            found = getattr(m, which)
        elif which == "recipients":
            found = (*m.to, *m.cc, *m.bcc)
        elif which == "participants":
            found = (*m.from_, *m.to, *m.cc, *m.bcc)
        elif which == "counterpart":
            # Bcc never counts: a sent copy carries the BCC'd intake address.
            found = (*m.to, *m.cc) if self.direction == "outbound" else (m.from_ or m.sender)
            found = [a for a in found if not self.protected(a)]
        elif which == "original_sender":
            # The sender of the mail a forward carries (engine/forwarded.py); like a
            # counterpart, never the owner or a colleague (a forward of one's own mail).
            fwd = self.forwarded()
            found = [a for a in (fwd.senders if fwd else ()) if not self.protected(a)]
        else:
            raise ValueError(which)
        out: list[Address] = []
        seen: set[str] = set()
        for a in found:
            if a.address and a.key not in seen:
                seen.add(a.key)
                out.append(a)
        return out

    def forwarded(self) -> Forwarded | None:
        if self._forwarded is _UNSET:
            self._forwarded = original_sender(self.message)
        return self._forwarded  # type: ignore[return-value]

    def protected(self, a: Address) -> bool:
        """Owner, intake and internal addresses: never counterparts, never created."""
        return (
            a.key in self.owner_keys
            or a.key in self.intake_keys
            or any(addresses.in_domain(a.address, d) for d in self.ctx.internal_domains)
        )

    def excluded(self, a: Address) -> bool:
        return addresses.matches_any(a.address, self.ctx.exclude)

    def who(self, which: str, action: str) -> list[Address]:
        """The addresses a find/create works on: protected and excluded ones left out."""
        out = []
        for a in self.addresses(which):
            if self.protected(a):
                continue  # the owner/colleagues: silently, they are never anyone's record
            if self.excluded(a):
                self.note("note", f"{action}: {a.address} is excluded (never stored)")
                continue
            out.append(a)
        return out

    def is_freemail(self, domain: str) -> bool:
        return domain.lower() in self.freemail

    # -- CRM lookups ----------------------------------------------------------------------

    def lookup(self, a: Address, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        cache = (a.key, tuple(kinds))
        if cache not in self._lookups:
            self._lookups[cache] = list(self.crm.find(a.address, list(kinds)))
        self.looked_up.add(a.key)
        return self._lookups[cache]

    def lookup_domain(self, domain: str) -> list[PartyRef]:
        """Accounts of a (non-freemail) domain, remembered in `found_by_domain`."""
        if not domain or self.is_freemail(domain):
            return []
        if domain not in self._domains_looked:
            self._domains_looked.add(domain)
            refs = [r for r in self.crm.find_by_domain(domain) if r.kind == "account"]
            if refs:
                self.plan.found_by_domain.setdefault(domain, [])
                _extend(self.plan.found_by_domain[domain], refs)
        return self.plan.found_by_domain.get(domain, [])

    def add_found(self, a: Address, refs: Iterable[PartyRef]) -> None:
        _extend(self.plan.found.setdefault(a.key, []), refs)

    def known(self, a: Address) -> bool:
        return bool(self.plan.found.get(a.key) or self.created.get(a.key))

    def mark_ambiguous(self, a: Address, refs: Sequence[PartyRef], kind: str) -> None:
        self.ambiguous[a.key] = tuple(refs)
        self.review(f"{a.address} matches {len(refs)} {kind}s", ((a.address, tuple(refs)),))

    # -- planning -------------------------------------------------------------------------

    def automated(self) -> list[message_module.AutomatedVerdict]:
        if self._automated is None:
            # Looked up at call time so the parsing module's implementation is the one used.
            self._automated = list(message_module.automated(self.message))
        return self._automated

    def add_create(self, create: PlannedCreate, for_keys: Iterable[str]) -> None:
        self.creates[create.key] = create
        for k in for_keys:
            self.created.setdefault(k, []).append(create.key)

    def replace_create(self, create: PlannedCreate) -> None:
        self.creates[create.key] = create

    def add_attach(self, targets: Sequence[Target], attachments: bool) -> None:
        self.attach_planned = True
        for t in targets:
            if t not in self.targets:
                self.targets.append(t)
        if self.rule not in self.attach_rules:
            self.attach_rules.append(self.rule)
        self.attach_attachments = self.attach_attachments or attachments

    def review(self, reason: str, candidates: Sequence[tuple[str, tuple[PartyRef, ...]]] = ()) -> None:
        self.review_reasons.append(reason)
        self.review_candidates.extend(candidates)

    def skip(self, reason: str) -> None:
        self.skip_reason = reason
        self.stopped = True

    def fail(self, reason: str) -> None:
        self.note("note", f"permanent failure: {reason}", False)
        raise RuleFailure(f"rule {self.rule!r}: {reason}", self.finish())

    def tag(self, names: Iterable[str]) -> None:
        for n in names:
            if n in self.plan.tags_remove:
                self.plan.tags_remove.remove(n)
            if n not in self.plan.tags_add:
                self.plan.tags_add.append(n)

    def untag(self, names: Iterable[str]) -> None:
        for n in names:
            if n in self.plan.tags_add:
                self.plan.tags_add.remove(n)
            if n not in self.plan.tags_remove:
                self.plan.tags_remove.append(n)

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> Plan:
        plan = self.plan
        owner = self.assign_owner or self.ctx.crm_user or self.ctx.mailbox
        creates = [c if c.data.owner else replace(c, data=replace(c.data, owner=owner)) for c in self.creates.values()]
        # Accounts first, so contacts/leads linking to a new account find it made.
        plan.creates = sorted(creates, key=lambda c: 0 if c.kind == "account" else 1)
        plan.attach = (
            PlannedAttach(tuple(self.targets), self.attach_attachments, tuple(self.attach_rules)) if self.targets else None
        )
        plan.notes = list(self.notes)
        if self.review_reasons:
            plan.review = ReviewInfo("; ".join(self.review_reasons), tuple(self.review_candidates))
        if self.skip_reason is not None:
            plan.outcome, plan.reason = "skipped", self.skip_reason
            plan.creates, plan.attach, plan.notes = [], None, []
            plan.tags_add, plan.tags_remove, plan.move, plan.review = [], [], None, None
        elif plan.review is not None:
            plan.outcome, plan.reason = "review", plan.review.reason
        elif plan.touched:
            plan.outcome = "done"
        else:
            plan.outcome, plan.reason = "ignored", "no rule matched"
        return plan


def _extend(target: list[PartyRef], refs: Iterable[PartyRef]) -> None:
    for r in refs:
        if r not in target:
            target.append(r)


# -- names for new records ------------------------------------------------------------------

_SPLIT = re.compile(r"[._\-+]+")
_SKIP_LABELS = {"www", "mail", "email", "mx", "smtp"}


def person_names(a: Address) -> tuple[str, str]:
    """(first, last): from the display name ("Lee, Ann" and "Ann Lee"), else the local part."""
    name = " ".join(a.name.replace('"', " ").split())
    if name and "@" not in name:
        if "," in name:
            last, _, first = name.partition(",")
            return first.strip(), last.strip()
        first, _, last = name.partition(" ")
        return (first, last) if last else ("", first)
    words = [w for w in _SPLIT.split(a.local) if w]
    words = [w[:1].upper() + w[1:] for w in words]
    if len(words) >= 2:
        return words[0], " ".join(words[1:])
    return "", (words[0] if words else a.address)


def party_data_for(kind: str, a: Address, *, freemail: bool, owner: str = "", fields: dict[str, str] | None = None) -> PartyData:
    """The record `create` (and `review create`) makes for an address: names, company, domain."""
    if kind == "account":
        return PartyData(kind="account", name=account_name(a.domain), domain=a.domain, owner=owner, fields=fields or {})
    first, last = person_names(a)
    return PartyData(
        kind=kind,  # type: ignore[arg-type]
        emails=(a.address,),
        first_name=first,
        last_name=last,
        name=a.name,
        company="" if freemail else a.domain,
        owner=owner,
        fields=fields or {},
    )


def account_name(domain: str) -> str:
    """`acme.example` → "Acme": the domain's first label (skipping www/mail), capitalised."""
    labels = [lab for lab in domain.split(".") if lab]
    while len(labels) > 2 and labels[0] in _SKIP_LABELS:
        labels = labels[1:]
    first = labels[0] if labels else domain
    return first[:1].upper() + first[1:]
