"""What a person decides about a message (`review resolve/create`, `quarantine retry`,
`reprocess`), done with the pipeline's CRM execution, journal and tagging.

A resolve journals each step (intent, call, result) as the Plan's steps are: a create that
may have reached the CRM before a crash is looked up and adopted; the attach is idempotent.
Once the CRM work is journalled the message is `crm_done`, so a retry only tags it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import cast

from gateway.config import Config
from gateway.config.context import Contexts
from gateway.crm.base import PartyKind, PartyRef
from gateway.engine.model import Plan
from gateway.engine.state import party_data_for
from gateway.errors import Permanent
from gateway.ledger import Ledger
from gateway.ledger.locks import KeyedLocks
from gateway.ledger.states import LocationState as L
from gateway.ledger.states import MessageState
from gateway.ledger.states import MessageState as M
from gateway.message import addresses
from gateway.message.parsing import Address, Message
from gateway.pipeline.claim import Reader
from gateway.pipeline.execution import Execution
from gateway.pipeline.journal import CRM_DONE, email_record, note_data, ref_from_json, ref_to_json
from gateway.pipeline.tagging import Tagging


class Decisions:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        contexts: Contexts,
        reader: Reader,
        execution: Execution,
        tagging: Tagging,
        message_locks: KeyedLocks,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.contexts = contexts
        self.reader = reader
        self.execution = execution
        self.tagging = tagging
        self._message_locks = message_locks

    def reopen(self, message_pk: int, state: MessageState = M.RECEIVED) -> int:
        """Send a message through the current rules again; returns its primary location."""
        if not self.ledger.locations_of(message_pk):
            raise Permanent(f"message {message_pk} has no location left")
        return self.ledger.reopen(message_pk, state)

    def resolve(self, message_pk: int, to: Sequence[PartyRef] | None = None, create_kind: str | None = None) -> str:
        """Attach a message in review to the records a person picked (or creates), then tag it."""
        row = self.ledger.message(message_pk)
        if row.state != M.REVIEW:
            raise Permanent(f"message {message_pk} is {row.state}, not in review")
        with self._message_locks(str(message_pk)):
            raw = self.reader.read(row.spool_path)
            message = self.reader.parse(raw, row.created_at)
            plan = Plan.from_json(row.plan) if row.plan else None
            loc = self.ledger.location(row.primary_location or self.ledger.locations_of(message_pk)[0].id)
            crm_user = self.contexts.for_ref(loc.ref).crm_user
            targets = list(to or [])
            if create_kind:
                targets += self._creates(message_pk, message, plan, cast(PartyKind, create_kind), crm_user)
            if not targets:
                raise Permanent("nothing to attach to: give --to KIND:ID or --kind")
            record = email_record(message, raw, plan.direction if plan else "inbound", owner=crm_user)
            self.ledger.intent(message_pk, "review:attach")
            email = self.execution.attach_once(targets, record)
            self.ledger.result(message_pk, "review:attach", {"email_id": email.id, "targets": [ref_to_json(t) for t in targets]})
            for planned in plan.notes if plan else ():  # the rules' notes go where the person put the mail
                step = f"review:{planned.key}"
                self.ledger.intent(message_pk, step)
                self.ledger.result(
                    message_pk, step, self.execution.note_once(step, targets, note_data(planned, message, crm_user))
                )
            # From here the message is done as far as the CRM goes: if tagging fails or the process
            # dies, a retry replays this done Plan and only tags (CRM_DONE), never review again.
            done_plan = replace(plan, outcome="done", review=None) if plan else None
            self.ledger.intent(message_pk, CRM_DONE)
            self.ledger.result(message_pk, CRM_DONE, True)
            stored = done_plan.to_json() if done_plan else None
            self.ledger.set_state(
                message_pk, M.CRM_DONE, plan=stored, event_detail="resolved by a person: " + ", ".join(t.label() for t in targets)
            )
            for copy in self.ledger.locations_of(message_pk):
                self.ledger.take_location(copy.id, [L.APPLIED, L.UNTAGGED, L.NONE], L.WAITING)
            self.tagging.copies(replace(row, state=M.CRM_DONE, reason="", plan=stored or row.plan), final_state=M.DONE)
        return self.ledger.message(message_pk).state

    def _creates(self, message_pk: int, message: Message, plan: Plan | None, kind: PartyKind, crm_user: str) -> list[PartyRef]:
        """`review create`: a record of `kind` for each address the review was about (else
        the counterparts, else the sender), each its own journal step."""
        wanted = [a for a, _ in plan.review.candidates] if plan and plan.review and plan.review.candidates else []
        wanted = wanted or list(plan.counterparts if plan else ()) or [a.address for a in message.from_[:1]]
        made: list[PartyRef] = []
        for address in wanted:
            step = f"review:create:{kind}:{addresses.key(address)}"
            journal = self.ledger.journal(message_pk)
            if journal.get(step) is not None:
                made.append(ref_from_json(journal[step]))
                continue
            who = next(
                (a for a in (*message.from_, *message.to, *message.cc) if a.key == addresses.key(address)), Address("", address)
            )
            data = party_data_for(kind, who, owner=crm_user, freemail=who.domain in self.config.freemail)
            # After a crash (intent, no result) the record may exist: adopt it. Otherwise the
            # person asked for a new record, even where the address has others already.
            ref, _ = self.execution.make(
                kind, address, data, look_first=step in journal, before_call=partial(self.ledger.intent, message_pk, step)
            )
            self.ledger.result(message_pk, step, ref_to_json(ref, created=True))
            made.append(ref)
        return made
