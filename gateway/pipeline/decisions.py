"""What a person decides about a message (`review resolve/create`, `quarantine retry`,
`reprocess`), done with the pipeline's CRM execution, journal and tagging.

A resolve is a Work whose Plan is the person's pick, run by the same execution steps as the
rules' Plans; each step is journalled as it goes (intent, call, result) under its `review:`
key: a create that may have reached the CRM before a crash is looked up and adopted, the
attach and the notes are idempotent. Once the CRM work is journalled the message is
`crm_done`, so a retry only tags it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

from gateway.config import Config
from gateway.config.context import Contexts
from gateway.crm.base import PartyKind, PartyRef
from gateway.engine.model import Plan, PlannedAttach, PlannedCreate, Target
from gateway.engine.state import party_data_for
from gateway.errors import Conflict, Permanent
from gateway.ledger import Ledger, LocationRow
from gateway.ledger.locks import KeyedLocks
from gateway.ledger.states import LocationState as L
from gateway.ledger.states import MessageState
from gateway.ledger.states import MessageState as M
from gateway.message import addresses
from gateway.message.parsing import Address, Message
from gateway.pipeline.claim import Reader, bind_of
from gateway.pipeline.execution import Execution
from gateway.pipeline.items import DECISION, Steps, Work
from gateway.pipeline.journal import CRM_DONE, plan_of, plan_text, targets_of
from gateway.pipeline.tagging import Tagging

# States in which a message's CRM work is over and a person may file it on more records.
LINKABLE = (M.DONE, M.DONE_UNTAGGED, M.IGNORED, M.SKIPPED)


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

    def reopen(self, message_pk: int, state: MessageState = M.RECEIVED, *, redo: Sequence[str] = ()) -> int:
        """Send a message through the current rules again; returns its primary location."""
        if not self.ledger.locations_of(message_pk):
            raise Permanent(f"message {message_pk} has no location left")
        return self.ledger.reopen(message_pk, state, redo=redo)

    def resolve(self, message_pk: int, to: Sequence[PartyRef] | None = None, create_kind: str | None = None) -> str:
        """Attach a message in review to the records a person picked (or creates), then tag it.

        The person's pick becomes the Plan of a Work that the CRM execution runs as it runs
        the rules' Plans (creates, attach, notes), with the decision's journal steps
        (`review:…`, `items.DECISION`): run again after a crash, it adopts what is done."""
        row = self.ledger.message(message_pk)
        if row.state != M.REVIEW:
            raise Permanent(f"message {message_pk} is {row.state}, not in review")
        with self._message_locks(str(message_pk)):
            raw = self.reader.read(row.spool_path)
            message = self.reader.parse(raw, row.created_at)
            stored = plan_of(row)
            loc = self.ledger.location(row.primary_location or self.ledger.locations_of(message_pk)[0].id)
            crm_user = self.contexts.for_ref(loc.ref).crm_user
            picked = self._picked(stored, message, list(to or []), cast(PartyKind | None, create_kind), crm_user)
            if picked.attach is None:
                raise Permanent("nothing to attach to: give --to KIND:ID or --kind")
            # The records made by an earlier, interrupted decision are adopted (its journal); the
            # attach and the notes are idempotent and go again to what the person picks now.
            made = {k: v for k, v in self.ledger.journal(message_pk).items() if k.startswith(DECISION.key("create:"))}
            work = Work(loc, row, message, raw, picked, fresh=False, journal=made, steps=DECISION)
            work = self.execution.creates(work)
            self.execution.attach([work])
            self.execution.notes(work)  # the rules' notes go where the person put the mail
            targets = targets_of(picked, work.created)
            # From here the message is done as far as the CRM goes: if tagging fails or the process
            # dies, a retry replays this done Plan and only tags (CRM_DONE), never review again.
            self.ledger.intent(message_pk, CRM_DONE)
            self.ledger.result(message_pk, CRM_DONE, True)
            self.execution.hooks.step(CRM_DONE)
            done = plan_text(replace(stored, outcome="done", review=None)) if stored else None
            self.ledger.set_state(
                message_pk,
                M.CRM_DONE,
                plan_json=done,
                event_detail="resolved by a person: " + ", ".join(t.label() for t in targets),
            )
            for copy in self.ledger.locations_of(message_pk):
                self.ledger.take_location(copy.id, [L.APPLIED, L.UNTAGGED, L.NONE], L.WAITING)
            self.tagging.copies(replace(row, state=M.CRM_DONE, reason="", plan_json=done or row.plan_json), final_state=M.DONE)
        return self.ledger.message(message_pk).state

    def link(self, message_pk: int, ref: PartyRef) -> str:
        """Attach a handled message to one more record a person picked (the console's and the
        Outlook add-in's "file this mail here"), through the same attach step as the rules':
        idempotent, so linking twice leaves one link. Journalled as `link:<record>:attach`.
        Returns the CRM's email id."""
        row = self.ledger.message(message_pk)
        if row.state not in LINKABLE:
            hint = "; resolve the review instead" if row.state == M.REVIEW else ""
            raise Conflict(f"message {message_pk} is {row.state}: only a handled message can be linked{hint}")
        with self._message_locks(str(message_pk)):
            copies = self.ledger.locations_of(message_pk)
            if not copies:
                raise Permanent(f"message {message_pk} has no location left")
            loc = self.ledger.location(row.primary_location or copies[0].id)
            raw = self._raw(row.spool_path, loc, row.message_id, row.content_hash)
            message = self.reader.parse(raw, row.created_at)
            stored = plan_of(row)
            plan = Plan(
                outcome="done",
                direction=stored.direction if stored else "inbound",
                attach=PlannedAttach((Target(ref=ref),), attachments=True, rules=("link",)),
            )
            work = Work(loc, row, message, raw, plan, fresh=False, steps=Steps(f"link:{ref.label()}:", as_they_go=True))
            self.execution.attach([work])
            self.ledger.add_event(message_pk, "linked", f"attached by a person to {ref.label()}")
            result = work.results[work.steps.key("attach")]
        return str(result["email_id"])

    def file_found(self, location_pk: int, ref: PartyRef) -> tuple[int, str]:
        """File a copy a person handed in by hand (found in their mailbox by its Message-ID, the
        gateway never handled its mail) on the record they picked, without the rules: its
        message is claimed straight into review (the person's decision is all it waits for) and
        resolved to `ref` at once, by `resolve`; the copy gets the tags of synced mail
        (config `tags.linked`). A copy whose mail the ledger knows by now (another copy was
        handled meanwhile) joins that message, tagged when it is final, and is linked as a
        handled message is (409 while it is still in work). Returns the message's id and the
        CRM's email id."""
        loc = self.ledger.location(location_pk)
        raw = self.reader.read(loc.spool_path, loc.ref)
        message = self.reader.parse(raw, loc.seen_at, loc.declared_size)
        why = f"filed by a person on {ref.label()}"
        binding = self.ledger.bind_many([bind_of(loc, message, M.REVIEW, why)])[0]
        if loc.state == L.NEW:
            self.ledger.plan_location(loc.id, self.config.tags.linked, (), None, state=L.WAITING)
        row = self.ledger.message(binding.message_pk)
        if binding.primary and row.state == M.REVIEW and not row.plan_json:
            self.resolve(row.id, [ref])
            attached = self.ledger.journal(row.id).get(DECISION.key("attach"))
            if isinstance(attached, dict) and attached.get("email_id") is not None:
                return row.id, str(attached["email_id"])
        elif row.state in LINKABLE:
            self.tagging.copies(row)  # the new copy only: the message's row stays as it is
        # known by now (or its decision's journal says no email): linked as a handled one is
        return row.id, self.link(row.id, ref)

    def _raw(self, spool_path: str | None, loc: LocationRow, message_id: str, content_hash: str) -> bytes:
        """The message's bytes: spooled, fetched again from its mailbox, or as the CRM stored it."""
        try:
            return self.reader.read(spool_path, loc.ref)
        except Permanent:
            crm = self.execution.crm
            stored = crm.find_email(message_id, content_hash) or crm.find_email(message_id)
            raw_email = getattr(crm, "raw_email", None)
            raw = raw_email(stored) if stored is not None and raw_email is not None else None
            if not raw:
                raise Permanent(f"the raw message {message_id} is neither in the spool, its mailbox nor the CRM") from None
            return bytes(raw)

    def _picked(self, stored: Plan | None, message: Message, to: list[PartyRef], kind: PartyKind | None, crm_user: str) -> Plan:
        """The person's decision as a Plan: `review create` makes a record of `kind` for each
        address the review was about (else the counterparts, else the sender); the mail goes
        to the picked and the made records, and so do the rules' notes."""
        creates: list[PlannedCreate] = []
        if kind is not None:
            wanted = [a for a, _ in stored.review.candidates] if stored and stored.review else []
            wanted = wanted or list(stored.counterparts if stored else ()) or [a.address for a in message.from_[:1]]
            for address in wanted:
                if any(c.key == f"create:{kind}:{addresses.key(address)}" for c in creates):
                    continue  # one step an address
                who = next(
                    (a for a in (*message.from_, *message.to, *message.cc) if a.key == addresses.key(address)),
                    Address("", address),
                )
                data = party_data_for(kind, who, owner=crm_user, freemail=who.domain in self.config.freemail)
                creates.append(PlannedCreate(f"create:{kind}:{addresses.key(address)}", kind, address, data, "review"))
        targets = (*(Target(ref=r) for r in to), *(Target(create_key=c.key) for c in creates))
        # What the rules found for each address, the review's candidates too: a create replayed
        # after a crash adopts a record of its address only if it is none of these.
        found = {k: list(v) for k, v in (stored.found if stored else {}).items()}
        for address, refs in stored.review.candidates if stored and stored.review else ():
            found.setdefault(addresses.key(address), []).extend(refs)
        return Plan(
            outcome="done",
            direction=stored.direction if stored else "inbound",
            found=found,
            creates=creates,
            attach=PlannedAttach(targets, attachments=True, rules=("review",)) if targets else None,
            notes=[replace(n, targets=targets) for n in (stored.notes if stored else ())],
        )
