"""The ledger's two hot writes, for a batch of messages in one transaction each.

A worker takes several queued copies at once: their claims (`bind_many`) share one
transaction, and so do their outcomes (`finish_many`). Each statement runs once per batch as
an executemany, so the per-statement and per-commit cost of SQLAlchemy and SQLite is paid
once for the batch instead of once per message. `Ledger.bind` and `Ledger.finish` are these
with a batch of one: there is a single implementation of each write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update

from gateway.ledger_schema import events, journal, locations, message_addresses, messages
from gateway.mailboxes.base import SourceRef

if TYPE_CHECKING:
    from gateway.ledger import Binding, Ledger


# Built once: SQLAlchemy then reuses their compiled form; building statements per call was a
# fifth of the hot path's time.
_INSERT_ADDRESS = insert(message_addresses)
_INSERT_EVENT = insert(events)
_INSERT_INTENT = insert(journal)
_LINK_LOCATION = update(locations).where(locations.c.id == bindparam("pk")).values(
    message_pk=bindparam("b_message_pk"), updated_at=bindparam("b_updated_at"))
# A message quarantined meanwhile (the budget watchdog gave up on a worker) keeps that state:
# a late outcome from the abandoned worker must not overwrite it. `reopen` clears it first.
_NOT_QUARANTINED = messages.c.state != "quarantined"
_SET_STATE = update(messages).where(messages.c.id == bindparam("pk"), _NOT_QUARANTINED).values(
    state=bindparam("b_state"), reason=bindparam("b_reason"), next_attempt_at=None, updated_at=bindparam("b_updated_at"))
_SET_STATE_PLAN = update(messages).where(messages.c.id == bindparam("pk"), _NOT_QUARANTINED).values(
    state=bindparam("b_state"), reason=bindparam("b_reason"), next_attempt_at=None, updated_at=bindparam("b_updated_at"),
    plan_json=bindparam("b_plan_json"))
_TAG_LOCATION = update(locations).where(locations.c.id == bindparam("pk")).values(
    tags=bindparam("b_tags"), state=bindparam("b_state"), updated_at=bindparam("b_updated_at"))
_TAG_LOCATION_PLANNED = update(locations).where(locations.c.id == bindparam("pk")).values(
    tags=bindparam("b_tags"), state=bindparam("b_state"), updated_at=bindparam("b_updated_at"),
    tags_add=bindparam("b_tags_add"), tags_remove=bindparam("b_tags_remove"), move_to=bindparam("b_move_to"))
_SET_PLAN = update(messages).where(messages.c.id == bindparam("pk")).values(
    state=bindparam("b_state"), plan_json=bindparam("b_plan_json"), updated_at=bindparam("b_updated_at"))
_SET_RESULT = update(journal).where(journal.c.message_pk == bindparam("b_message_pk"), journal.c.step == bindparam("b_step")).values(
    result=bindparam("b_result"), done_at=bindparam("b_done_at"))


@dataclass(frozen=True)
class Bind:
    """Link a copy (location) to its message identity: insert it (the copy is the primary) or join it."""

    location_pk: int
    message_id: str
    content_hash: str
    subject: str = ""
    from_address: str = ""
    size: int = 0
    addresses: Iterable[str] = ()
    spool_path: str | None = None
    state: str = "processing"
    reason: str = ""
    label: str = ""  # the copy's place, for the "another copy at …" event

    @property
    def identity(self) -> str:
        if len(self.message_id) > MESSAGE_ID_MAX:  # hostile: a hash of it names the mail as well
            digest = hashlib.sha256(self.message_id.encode("utf-8", "surrogatepass")).hexdigest()
            return f"<sha256:{digest}>|{self.content_hash}"
        return f"{self.message_id}|{self.content_hash}"


@dataclass(frozen=True)
class Finish:
    """A message's outcome: its CRM steps' results, its state and its primary copy's tags."""

    message_pk: int
    state: str
    reason: str = ""
    plan: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    location_pk: int | None = None
    tags: Sequence[str] = ()
    location_state: str = "applied"
    planned: tuple[Sequence[str], Sequence[str], str | None] | None = None
    moved_to: SourceRef | None = None
    events_: Sequence[tuple[str, str]] = field(default_factory=tuple)
    results_are_new: bool = False  # steps that needed no intent (an idempotent attach): insert them
    marks: dict[str, Any] | None = None  # steps that have no intent of their own (crm_done)


_CHUNK = 500  # bound parameters per IN (…): well under SQLite's and PostgreSQL's limits
MESSAGE_ID_MAX = 500  # the ledger's column; a longer Message-ID is kept cut, its identity hashed


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def bind_many(ledger: Ledger, items: Sequence[Bind]) -> list[Binding]:
    """Claim each item's identity, in one transaction; Bindings in the order of `items`.

    The insert is the claim: INSERT … ON CONFLICT DO NOTHING, then the row that holds the
    identity tells whether this copy made it (primary) or found it (a copy). Two copies of one
    mail in the same batch: the first is the primary. A copy linked before (a retry of this
    step) gets its link back unchanged."""
    from gateway.ledger import Binding, MessageRow, _insert_ignore, now

    t = now()
    out: dict[int, Binding] = {}
    with ledger.engine.begin() as c:
        linked: dict[int, int] = {}
        for chunk in _chunks([b.location_pk for b in items]):
            linked.update(c.execute(select(locations.c.id, locations.c.message_pk).where(
                locations.c.id.in_(chunk), locations.c.message_pk.is_not(None))).all())
        fresh = [b for b in items if b.location_pk not in linked]
        if fresh:
            # In identity order (stable: of two copies in the batch the first is the primary), so
            # two processes claiming the same mails lock their rows in one order, never a cycle.
            c.execute(_insert_ignore(c, messages), [
                {"identity": b.identity, "message_id": b.message_id[:MESSAGE_ID_MAX], "content_hash": b.content_hash,
                 "state": b.state,
                 "reason": b.reason, "attempts": 0, "spool_path": b.spool_path, "primary_location": b.location_pk,
                 "subject": b.subject[:500], "from_address": b.from_address[:320], "size": b.size,
                 "created_at": t, "updated_at": t} for b in sorted(fresh, key=lambda b: b.identity)])
        holders: dict[str, Any] = {}
        for chunk in _chunks(sorted({b.identity for b in fresh})):
            for r in c.execute(select(messages.c.id, messages.c.identity, messages.c.primary_location,
                                      messages.c.state).where(messages.c.identity.in_(chunk))):
                holders[r.identity] = r
        links, address_rows, copy_events = [], [], []
        for b in fresh:
            held = holders[b.identity]
            links.append({"pk": b.location_pk, "b_message_pk": held.id, "b_updated_at": t})
            if held.primary_location == b.location_pk:
                address_rows += [{"message_pk": held.id, "address_key": k} for k in sorted({a[:320] for a in b.addresses if a})]
                out[b.location_pk] = Binding(held.id, True, b.state, MessageRow(
                    id=held.id, identity=b.identity, message_id=b.message_id[:MESSAGE_ID_MAX], content_hash=b.content_hash,
                    state=b.state, reason=b.reason, attempts=0, next_attempt_at=None, spool_path=b.spool_path,
                    primary_location=b.location_pk, subject=b.subject[:500], from_address=b.from_address[:320],
                    size=b.size, plan=None, created_at=t, updated_at=t))
            else:
                copy_events.append({"message_pk": held.id, "at": t, "event": "copy",
                                    "detail": f"another copy at {b.label or b.location_pk}"})
                out[b.location_pk] = Binding(held.id, False, held.state, None)
        if links:
            c.execute(_LINK_LOCATION, links)
        if address_rows:
            c.execute(_INSERT_ADDRESS, address_rows)
        if copy_events:
            c.execute(_INSERT_EVENT, copy_events)
        for location_pk, message_pk in linked.items():  # bound before (a retry of this step)
            row = MessageRow.of(c.execute(select(messages).where(messages.c.id == message_pk)).one())
            out[location_pk] = Binding(row.id, row.primary_location == location_pk, row.state, row)
    return [out[b.location_pk] for b in items]


def finish_many(ledger: Ledger, items: Sequence[Finish]) -> list[list[int]]:
    """Record each message's outcome, all in one transaction; for each, the other copies of
    that message that are waiting for their tags."""
    from gateway.ledger import LOCATION_OPEN, _insert_ignore, now

    t = now()
    intents: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    with_plan: list[dict[str, Any]] = []
    without_plan: list[dict[str, Any]] = []
    tags_planned: list[dict[str, Any]] = []
    tags_only: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for f in items:
        if f.results and f.results_are_new:
            intents += [{"message_pk": f.message_pk, "step": step, "intent_at": t, "done_at": t,
                         "result": json.dumps(value, default=str)} for step, value in f.results.items()]
        elif f.results:
            results += [{"b_message_pk": f.message_pk, "b_step": step, "b_result": json.dumps(value, default=str),
                         "b_done_at": t} for step, value in f.results.items()]
        if f.marks:
            marks += [{"message_pk": f.message_pk, "step": step, "intent_at": t, "done_at": t, "result": json.dumps(value)}
                      for step, value in f.marks.items()]
        state = {"pk": f.message_pk, "b_state": f.state, "b_reason": f.reason, "b_updated_at": t}
        if f.plan is not None:
            with_plan.append(state | {"b_plan_json": json.dumps(f.plan, default=str)})
        else:
            without_plan.append(state)
        if f.location_pk is not None:
            values: dict[str, Any] = {"pk": f.location_pk, "b_tags": json.dumps(sorted(set(f.tags))),
                                      "b_state": f.location_state, "b_updated_at": t}
            if f.planned is not None:
                tags_planned.append(values | {"b_tags_add": json.dumps(list(f.planned[0])),
                                              "b_tags_remove": json.dumps(list(f.planned[1])), "b_move_to": f.planned[2]})
            else:
                tags_only.append(values)
        event_rows += [{"message_pk": f.message_pk, "at": t, "event": name, "detail": detail}
                       for name, detail in (*f.events_, (f.state, f.reason))]
    waiting: dict[int, list[int]] = {}
    with ledger.engine.begin() as c:
        if intents:
            c.execute(_INSERT_INTENT, intents)
        if results:
            c.execute(_SET_RESULT, results)
        if marks:
            c.execute(_insert_ignore(c, journal), marks)
        if with_plan:
            c.execute(_SET_STATE_PLAN, with_plan)
        if without_plan:
            c.execute(_SET_STATE, without_plan)
        for f in items:
            if f.location_pk is not None and f.moved_to is not None:  # rare: a `move`, or the user moved it
                c.execute(update(locations).where(locations.c.id == f.location_pk).values(
                    folder=f.moved_to.folder, item_key=f.moved_to.item_key, uidvalidity=f.moved_to.uidvalidity))
        if tags_planned:
            c.execute(_TAG_LOCATION_PLANNED, tags_planned)
        if tags_only:
            c.execute(_TAG_LOCATION, tags_only)
        c.execute(_INSERT_EVENT, event_rows)
        for chunk in _chunks(sorted({f.message_pk for f in items})):
            for message_pk, location_pk in c.execute(select(locations.c.message_pk, locations.c.id).where(
                    locations.c.message_pk.in_(chunk), locations.c.state.in_(LOCATION_OPEN)).order_by(locations.c.id)):
                waiting.setdefault(message_pk, []).append(location_pk)
    return [[pk for pk in waiting.get(f.message_pk, []) if pk != (f.location_pk or 0)] for f in items]


def start_plan_many(ledger: Ledger, items: Sequence[tuple[int, dict[str, Any], Sequence[str], str]]) -> list[dict[str, Any]]:
    """Store each message's evaluated Plan and the intents of its CRM steps, all in one
    transaction (items: message, plan, steps, event detail); each message's journal after it
    (step → result, None for an intent only). See `Ledger.start_plan`."""
    from gateway.ledger import _insert_ignore, now

    t = now()
    journals: dict[int, dict[str, Any]] = {pk: {} for pk, *_ in items}
    with ledger.engine.begin() as c:
        c.execute(_SET_PLAN, [{"pk": pk, "b_state": "processing", "b_plan_json": json.dumps(plan, default=str),
                               "b_updated_at": t} for pk, plan, _, _ in items])
        intents = [{"message_pk": pk, "step": step, "intent_at": t} for pk, _, steps, _ in items for step in steps]
        if intents:
            c.execute(_insert_ignore(c, journal), intents)
        c.execute(_INSERT_EVENT, [{"message_pk": pk, "at": t, "event": "processing", "detail": detail}
                                  for pk, _, _, detail in items])
        for chunk in _chunks(sorted(journals)):
            for r in c.execute(select(journal.c.message_pk, journal.c.step, journal.c.result).where(
                    journal.c.message_pk.in_(chunk))):
                journals[r.message_pk][r.step] = json.loads(r.result) if r.result is not None else None
    return [journals[pk] for pk, *_ in items]
