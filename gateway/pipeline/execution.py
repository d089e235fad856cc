"""CRM execution: the journal's intents, then the connector calls they announce.

DESIGN.md "The journal". Before a CRM create the ledger holds the step's intent; the step's
result is recorded with the message's outcome. After a crash, a step with an intent and no
result may have reached the CRM: its record is looked up and adopted, never made twice, and
counted as made by the gateway. An attach is idempotent in every connector, so it needs an
intent only for a connector that wants to know whether a call is a first attempt.

A person's review decision runs these same steps on a Work whose Plan is the person's pick;
its steps are named `review:…` and journalled one by one as they go (`items.Steps`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from gateway.config.context import Contexts
from gateway.crm.base import (
    PARTY_KINDS,
    Connector,
    EmailRef,
    NoteData,
    PartyData,
    PartyKind,
    PartyRef,
    attach_each,
)
from gateway.engine.model import Plan
from gateway.ledger import Ledger, MessageRow
from gateway.ledger.locks import AddressLocks
from gateway.ledger.states import MessageState as M
from gateway.message import addresses
from gateway.pipeline.hooks import Hooks
from gateway.pipeline.items import Work
from gateway.pipeline.journal import (
    CRM_DONE,
    email_record,
    evaluated_note,
    note_data,
    plan_text,
    ref_from_json,
    ref_to_json,
    resolve_targets,
    steps_of,
    targets_of,
)

log = logging.getLogger("gateway.pipeline")


class Execution:
    def __init__(self, ledger: Ledger, crm: Connector, contexts: Contexts, locks: AddressLocks, hooks: Hooks) -> None:
        self.ledger = ledger
        self.crm = crm
        self.contexts = contexts
        self.hooks = hooks
        self._address_locks = locks
        self.hint_attach = bool(getattr(crm, "wants_first_attempt_hint", False))

    def needs_intents(self, plan: Plan) -> bool:
        """Whether the Plan's steps are journalled before any CRM call: creates must be (a record
        made before a crash is adopted, not made twice); an attach only when the connector
        wants to know it is a first attempt. Otherwise a crash before the end just evaluates
        again, and the Plan is stored with the outcome (one commit less)."""
        return bool(plan.creates) or (plan.attach is not None and self.hint_attach)

    # ---- intents ------------------------------------------------------------------------

    def start(self, works: Sequence[Work]) -> list[Work]:
        """Store the Plans and the intents of their steps, in one ledger transaction; the
        works with their journals (a message sent through the rules again keeps the results
        of its earlier run, to adopt)."""
        plans = [plan_text(w.plan) for w in works]
        journals = self.ledger.start_plan_many(
            [(w.row.id, plan, steps_of(w.plan), evaluated_note(w.plan)) for w, plan in zip(works, plans, strict=True)]
        )
        return [
            replace(w, journal=journal, row=replace(w.row, state=M.PROCESSING, plan_json=plan))
            for w, plan, journal in zip(works, plans, journals, strict=True)
        ]

    def keep_partial(self, row: MessageRow, results: dict[str, Any]) -> None:
        """Some steps reached the CRM before a failure: journal them (a retry adopts them, and
        `forget` knows which records the gateway made)."""
        for step, value in results.items():
            self.ledger.intent(row.id, step)
            self.ledger.result(row.id, step, value)

    def mark_crm_done(self, row: MessageRow, plan: Plan | None, results: dict[str, Any]) -> None:
        """The write-back failed after the CRM work: record that work, and a CRM_DONE mark that
        no later state change can hide, so a retry only tags and never quarantines."""
        new = plan is not None and row.plan_json is None and not self.needs_intents(plan)
        self.ledger.finish(
            row.id,
            state=M.CRM_DONE,
            results=results,
            plan_json=plan_text(plan) if new and plan else None,
            events_=[("note", "CRM work committed; tagging failed")],
            results_are_new=new,
            marks={CRM_DONE: True},
        )

    # ---- creates ------------------------------------------------------------------------

    def creates(self, work: Work) -> Work:
        """The Plan's create steps: each step's record, made or adopted (from the journal, or
        from the CRM when another worker, or this one before a crash, made it meanwhile)."""
        created: dict[str, PartyRef] = {}
        for pc in work.plan.creates:
            key = work.steps.key(pc.key)
            if work.journal.get(key) is not None:
                created[pc.key] = ref_from_json(work.journal[key])
                continue
            data = pc.data
            if pc.account is not None:
                data = replace(data, account=pc.account.ref or created.get(pc.account.create_key or ""))
            if work.steps.as_they_go:  # a person's pick (`Steps`): what the rules found is not it
                intent = partial(self.ledger.intent, work.row.id, key)
                known = work.plan.found.get(addresses.key(pc.address), ())
                look = key in work.journal
                ref, made = self.make(pc.kind, pc.address, data, look_first=look, step=key, before_call=intent, known=known)
            else:
                ref, made = self.make(pc.kind, pc.address, data, look_first=True, step=key)
            created[pc.key] = ref
            # A record found on a replay was made by the run that died (its intent says so).
            self._done(work, key, ref_to_json(ref, created=made or not work.fresh))
        return replace(work, created=created)

    def _done(self, work: Work, key: str, result: dict[str, Any]) -> None:
        """A step's result: kept for the outcome's transaction, or journalled now (`Steps`)."""
        work.results[key] = result
        if work.steps.as_they_go:
            self.ledger.result(work.row.id, key, result)
        self.hooks.step(f"{key}:result")

    def make(
        self,
        kind: PartyKind,
        address: str,
        data: PartyData,
        *,
        look_first: bool,
        step: str | None = None,
        before_call: Callable[[], None] | None = None,
        known: Collection[PartyRef] = (),
    ) -> tuple[PartyRef, bool]:
        """The record for `address`: the one it has (`look_first`) or a new one; and whether
        this call made it. Creates for one address are serialised across workers.

        `step`: the journal step (the crash tests die at its stages); `before_call`: writes
        the step's intent, where it was not journalled with its Plan; `known`: records that
        were there before the create was asked for, never the one it made."""
        with self._address_locks(addresses.key(address)):
            existing = self.lookup(kind, address, known) if look_first else None
            if before_call is not None:
                before_call()
            if step is not None:
                self.hooks.step(f"{step}:intent")
            if existing is not None:
                return existing, False
            ref = self.crm.create(kind, data)
            if step is not None:
                self.hooks.step(f"{step}:called")
            return ref, True

    def lookup(self, kind: str, address: str, known: Collection[PartyRef] = ()) -> PartyRef | None:
        """The record this address already has. Any kind counts: a worker handling the same new
        sender from another folder may have made a lead where this Plan makes a contact, and
        done one after the other the second mail would have found the first record."""
        if kind == "account":
            found = self.crm.find_by_domain(address.rpartition("@")[2] or address)
        else:
            found = self.crm.find(address, [kind, *(k for k in PARTY_KINDS if k != kind)])  # type: ignore[list-item]
        before = {(r.kind, r.id) for r in known}
        return next((r for r in found if (r.kind, r.id) not in before), None)

    # ---- attach -------------------------------------------------------------------------

    def attaches(self, work: Work) -> bool:
        """Whether the work still has an attach to do."""
        return (
            not work.crm_done
            and work.plan.attach is not None
            and work.journal.get(work.steps.key("attach")) is None
            and bool(targets_of(work.plan, work.created))
        )

    def attach(self, works: Sequence[Work]) -> None:
        """Attach the works' mails, in one CRM transaction where the connector can; each one's
        result goes into its `results`. Raises when the CRM refused (nothing is recorded).
        The works of one call share their `Steps` (a decision is attached alone)."""
        if not works:
            return
        step = works[0].steps.key("attach")
        items = []
        for w in works:
            assert w.plan.attach is not None  # `attaches` said so
            record = email_record(
                w.message,
                w.raw,
                w.plan.direction,
                with_attachments=w.plan.attach.attachments,
                owner=self.contexts.for_ref(w.loc.ref).crm_user,
            )
            items.append((targets_of(w.plan, w.created), record))
            if w.steps.as_they_go:
                self.ledger.intent(w.row.id, step)
        self.hooks.step(f"{step}:intent")
        emails: Sequence[EmailRef]
        if self.hint_attach:
            # A fresh Plan's attach intent was written before any call: nothing can be stored yet.
            emails = [
                self.crm.attach(targets, record, first_attempt=w.fresh) for w, (targets, record) in zip(works, items, strict=True)
            ]
        else:
            emails = attach_each(self.crm, items)
        self.hooks.step(f"{step}:called")
        for w, (targets, _), email in zip(works, items, emails, strict=True):
            w.results[step] = {"email_id": email.id, "targets": [ref_to_json(t) for t in targets]}
            if w.steps.as_they_go:
                self.ledger.result(w.row.id, step, w.results[step])
        self.hooks.step(f"{step}:result")

    # ---- notes --------------------------------------------------------------------------

    def notes(self, work: Work) -> None:
        """The Plan's notes not done yet, each on its records; each one's result goes into the
        work's `results`. `add_note` is idempotent per key and record, so a replay after a
        crash between the call and the journal adds no second note."""
        if work.crm_done or work.plan.outcome == "review":  # in review: on the records the person picks
            return
        owner = self.contexts.for_ref(work.loc.ref).crm_user
        for planned in work.plan.notes:
            key = work.steps.key(planned.key)
            if work.journal.get(key) is not None:
                continue
            targets = resolve_targets(planned.targets, work.created)
            if targets:
                self._note(work, key, targets, note_data(planned, work.message, owner))

    def _note(self, work: Work, key: str, targets: Sequence[PartyRef], note: NoteData) -> None:
        """One note on `targets`, and its result in the journal's form."""
        if work.steps.as_they_go:
            self.ledger.intent(work.row.id, key)
        self.hooks.step(f"{key}:intent")
        ref = self.crm.add_note(targets, note)
        self.hooks.step(f"{key}:called")
        self._done(work, key, {"note_ids": list(ref.ids), "targets": [ref_to_json(t) for t in targets]})
