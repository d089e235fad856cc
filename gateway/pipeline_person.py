"""What a person decides about a message (`review resolve/create`, `quarantine retry`,
`reprocess`): a mixin of `gateway.pipeline.Pipeline`, on its journal and write-back."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from gateway import addresses
from gateway.crm.base import PartyRef
from gateway.engine.state import party_data_for
from gateway.errors import Permanent
from gateway.message import Address
from gateway.plan_steps import CRM_DONE
from gateway.records import email_record, plan_from_json, ref_from_json, ref_to_json

if TYPE_CHECKING:
    from gateway.pipeline import Pipeline


class PersonActions:
    def reopen(self: Pipeline, message_pk: int, state: str = "received") -> int:
        """Send a message through the current rules again; returns its primary location."""
        locs = self.ledger.locations_of(message_pk)
        if not locs:
            raise Permanent(f"message {message_pk} has no location left")
        return self.ledger.reopen(message_pk, state)

    def resolve(self: Pipeline, message_pk: int, to: list[PartyRef] | None = None, create_kind: str | None = None) -> str:
        """Attach a message in review to the records a person picked (or creates), then tag it."""
        row = self.ledger.message(message_pk)
        if row.state != "review":
            raise Permanent(f"message {message_pk} is {row.state}, not in review")
        with self._message_locks(str(message_pk)):
            raw = self._read(row.spool_path)
            message = self._parse(raw, row.created_at)
            plan = plan_from_json(row.plan) if row.plan else None
            direction = plan.direction if plan else "inbound"
            targets = list(to or [])
            loc = self.ledger.location(row.primary_location or self.ledger.locations_of(message_pk)[0].id)
            crm_user = self.contexts.for_ref(loc.ref).crm_user
            if create_kind:
                wanted = [a for a, _ in plan.review.candidates] if plan and plan.review and plan.review.candidates else []
                wanted = wanted or list(plan.counterparts if plan else ()) or [a.address for a in message.from_[:1]]
                for address in wanted:
                    step = f"review:create:{create_kind}:{addresses.key(address)}"
                    journal = self.ledger.journal(message_pk)
                    if journal.get(step) is not None:
                        targets.append(ref_from_json(journal[step]))
                        continue
                    with self._address_locks(addresses.key(address)):
                        # After a crash (intent, no result) or a race with a worker: adopt.
                        existing = self._lookup(create_kind, address) if step in journal else None
                        self.ledger.intent(message_pk, step)
                        if existing is None:
                            who = next((a for a in (*message.from_, *message.to, *message.cc)
                                        if a.key == addresses.key(address)), Address("", address))
                            data = party_data_for(create_kind, who, owner=crm_user,
                                                  freemail=who.domain in self.config.freemail)
                            existing = self.crm.create(create_kind, data)  # type: ignore[arg-type]
                    self.ledger.result(message_pk, step, ref_to_json(existing, created=True))
                    targets.append(existing)
            if not targets:
                raise Permanent("nothing to attach to: give --to KIND:ID or --kind")
            record = email_record(message, raw, direction, owner=crm_user)
            self.ledger.intent(message_pk, "review:attach")
            email = self.crm.attach(targets, record)
            self.ledger.result(message_pk, "review:attach", {"email_id": email.id, "targets": [ref_to_json(t) for t in targets]})
            # From here the message is done as far as the CRM goes: if tagging fails or the process
            # dies, a retry replays this done Plan and only tags (CRM_DONE), never review again.
            done_plan = replace(plan, outcome="done", review=None) if plan else None
            self.ledger.intent(message_pk, CRM_DONE)
            self.ledger.result(message_pk, CRM_DONE, True)
            self.ledger.set_state(message_pk, "crm_done", plan=done_plan.to_json() if done_plan else None,
                                  event_detail="resolved by a person: " + ", ".join(t.label() for t in targets))
            for loc in self.ledger.locations_of(message_pk):
                self.ledger.take_location(loc.id, ["applied", "untagged", "none"], "waiting")
            self._finish_locations(self.ledger.message(message_pk), final_state="done")
        return self.ledger.message(message_pk).state
