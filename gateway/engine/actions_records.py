"""Actions on CRM records: find, create, link_account, attach."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from yaml.nodes import Node

from gateway.crm.base import PARTY_KINDS, PartyData, PartyKind, PartyRef
from gateway.engine.action_base import Action, Args, Who, action
from gateway.engine.model import PlannedCreate, Target
from gateway.engine.state import account_name, party_data_for
from gateway.engine.templates import check_template, render
from gateway.reading.yamlpos import Checker

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation
    from gateway.message.parsing import Address

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
                notes.append(
                    f"{a.address}: found {', '.join(r.label() for r in chosen)}"
                    + (f" (newest of {len(by_kind[kind])} {kind}s)" if len(by_kind[kind]) > len(chosen) else "")
                )
            if kind is not None:  # every match is said, also those the kinds' order set aside
                passed = [r for k in o.kinds if k != kind for r in by_kind[k]]
                if passed:
                    notes[-1] += (
                        f"; also matches {', '.join(_named(r) for r in passed)}, not used: "
                        f"{kind} comes first in kinds [{', '.join(o.kinds)}]"
                    )
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


class CreateOptions(Args):
    kind: PartyKind
    who: Who = "sender"
    fields: dict[str, str] = Field(default_factory=dict)
    allow_automated: bool = False


@action("create")
class Create(Action):
    Options = CreateOptions
    provides_records = True

    @classmethod
    def check_options(cls, options: Any, node: Node | None, chk: Checker) -> None:
        for name, template in options.fields.items():
            check_template(template, f"create.fields.{name}", node, ["fields", name], chk)

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


def records_for(ev: Evaluation, to: AttachTo | list[AttachTo]) -> list[Target]:
    """The records `to` names (`attach: {to: …}`, `note: {to: …}`), found ones first; all =
    found + created; domain = the accounts found by the sender's domain. An ambiguous find
    names none (a person picks)."""
    wanted = {to} if isinstance(to, str) else set(to)
    if "all" in wanted:
        wanted |= {"found", "created"}
    targets: list[Target] = []
    if "found" in wanted:
        for k, refs in ev.plan.found.items():
            if k not in ev.ambiguous:
                targets += [Target(ref=r) for r in refs]
    if "created" in wanted:
        targets += [Target(create_key=k) for k in ev.creates]
    if "domain" in wanted:
        for refs in ev.plan.found_by_domain.values():
            targets += [Target(ref=r) for r in refs]
    return targets


@action("attach")
class Attach(Action):
    Options = AttachOptions
    needs_records = True

    def apply(self, ev: Evaluation) -> str:
        o: AttachOptions = self.options
        targets = records_for(ev, o.to)
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
        return f"attach to {', '.join(t.label() for t in unique)}{extra}" + ("" if o.attachments else ", without attachments")
