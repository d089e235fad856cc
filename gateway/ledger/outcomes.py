"""The ledger's writes of a message's progress: its Plan and intents stored (`start_plan_many`),
its outcome recorded (`finish_many`), and sent through the rules again (`reopen`).

Each runs on a connection the store opened a write transaction on, for a batch of messages
at once: a worker takes several queued copies, and each statement runs once per batch as an
executemany, so the per-statement and per-commit cost is paid once for the batch instead of
once per message. A single message is a batch of one: there is one implementation of each
write.

Every state change names the state it comes from: the current states are read (locked on
PostgreSQL) in the same transaction, checked against the transition tables
(gateway.ledger.states), and the UPDATE is guarded by them. An illegal move raises
`IllegalTransition` before anything is written, so the transaction changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from gateway.ledger.database import chunks, insert_ignore
from gateway.ledger.rows import Finish
from gateway.ledger.schema import events, journal, locations, messages
from gateway.ledger.states import (
    LOCATION_OPEN,
    REDO_MOVES,
    IllegalTransition,
    LocationState,
    MessageState,
    check_location_move,
    check_message_move,
)

# A message given up on meanwhile (the budget watchdog quarantined it) or erased on request
# keeps that state: a late write from the abandoned worker must not move it. `reopen` is the
# way out of quarantine.
LEFT_ALONE = frozenset({MessageState.QUARANTINED, MessageState.FORGOTTEN})
# The journal's mark that the CRM work is committed (the pipeline's CRM_DONE step).
CRM_DONE_MARK = "crm_done"

# Built once: SQLAlchemy then reuses their compiled form; building statements per call was a
# fifth of the hot path's time.
INSERT_EVENT = insert(events)
_INSERT_INTENT = insert(journal)
_FROM = messages.c.state == bindparam("b_from")
_SET_STATE = (
    update(messages)
    .where(messages.c.id == bindparam("pk"), _FROM)
    .values(state=bindparam("b_state"), reason=bindparam("b_reason"), next_attempt_at=None, updated_at=bindparam("b_updated_at"))
)
_SET_STATE_PLAN = (
    update(messages)
    .where(messages.c.id == bindparam("pk"), _FROM)
    .values(
        state=bindparam("b_state"),
        reason=bindparam("b_reason"),
        next_attempt_at=None,
        updated_at=bindparam("b_updated_at"),
        plan_json=bindparam("b_plan_json"),
    )
)
_LOCATION_FROM = locations.c.state == bindparam("b_from")
_TAG_LOCATION = (
    update(locations)
    .where(locations.c.id == bindparam("pk"), _LOCATION_FROM)
    .values(tags=bindparam("b_tags"), state=bindparam("b_state"), updated_at=bindparam("b_updated_at"))
)
_TAG_LOCATION_PLANNED = (
    update(locations)
    .where(locations.c.id == bindparam("pk"), _LOCATION_FROM)
    .values(
        tags=bindparam("b_tags"),
        state=bindparam("b_state"),
        updated_at=bindparam("b_updated_at"),
        tags_add=bindparam("b_tags_add"),
        tags_remove=bindparam("b_tags_remove"),
        move_to=bindparam("b_move_to"),
    )
)
_SET_PLAN = (
    update(messages)
    .where(messages.c.id == bindparam("pk"), _FROM)
    .values(state=bindparam("b_state"), plan_json=bindparam("b_plan_json"), updated_at=bindparam("b_updated_at"))
)
_MESSAGE_STATES = (
    select(messages.c.id, messages.c.state).where(messages.c.id.in_(bindparam("b_pks", expanding=True))).with_for_update()
)
_LOCATION_STATES = (
    select(locations.c.id, locations.c.state).where(locations.c.id.in_(bindparam("b_pks", expanding=True))).with_for_update()
)
_SET_RESULT = (
    update(journal)
    .where(journal.c.message_pk == bindparam("b_message_pk"), journal.c.step == bindparam("b_step"))
    .values(result=bindparam("b_result"), done_at=bindparam("b_done_at"))
)


def message_states(c: Connection, pks: Sequence[int]) -> dict[int, MessageState]:
    """The current state of these messages, locked until the transaction ends (PostgreSQL;
    SQLite's writer holds the whole file)."""
    out: dict[int, MessageState] = {}
    for chunk in chunks(sorted(set(pks))):
        for pk, state in c.execute(_MESSAGE_STATES, {"b_pks": chunk}):
            out[pk] = MessageState(state)
    return out


def location_states(c: Connection, pks: Sequence[int]) -> dict[int, LocationState]:
    """The current state of these copies, locked like `message_states`."""
    out: dict[int, LocationState] = {}
    for chunk in chunks(sorted(set(pks))):
        for pk, state in c.execute(_LOCATION_STATES, {"b_pks": chunk}):
            out[pk] = LocationState(state)
    return out


def start_plan_many(c: Connection, t: datetime, items: Sequence[tuple[int, str, Sequence[str], str]]) -> list[dict[str, Any]]:
    """Store each message's evaluated Plan and the intents of its CRM steps (items: message,
    plan, steps, event detail); each message's journal after it (step → result, None for an
    intent only). See `Ledger.start_plan`."""
    journals: dict[int, dict[str, Any]] = {pk: {} for pk, *_ in items}
    current = message_states(c, list(journals))
    plans = []
    for pk, plan_json, _, _ in items:
        if pk not in current:
            raise KeyError(pk)
        if current[pk] in LEFT_ALONE:
            continue  # the intents are still journalled: the CRM work the worker does is known
        check_message_move(current[pk], MessageState.PROCESSING, pk)
        plans.append(
            {
                "pk": pk,
                "b_from": current[pk].value,
                "b_state": MessageState.PROCESSING.value,
                "b_plan_json": plan_json,
                "b_updated_at": t,
            }
        )
    if plans:
        c.execute(_SET_PLAN, plans)
    intents = [{"message_pk": pk, "step": step, "intent_at": t} for pk, _, steps, _ in items for step in steps]
    if intents:
        c.execute(insert_ignore(c, journal), intents)
    c.execute(
        INSERT_EVENT,
        [{"message_pk": pk, "at": t, "event": MessageState.PROCESSING.value, "detail": detail} for pk, _, _, detail in items],
    )
    for chunk in chunks(sorted(journals)):
        for r in c.execute(select(journal.c.message_pk, journal.c.step, journal.c.result).where(journal.c.message_pk.in_(chunk))):
            journals[r.message_pk][r.step] = json.loads(r.result) if r.result is not None else None
    return [journals[pk] for pk, *_ in items]


def finish_many(c: Connection, t: datetime, items: Sequence[Finish]) -> list[list[int]]:
    """Record each message's outcome; for each, the other copies of that message that are
    waiting for their tags."""
    current = message_states(c, [f.message_pk for f in items])
    copies = location_states(c, [f.location_pk for f in items if f.location_pk is not None])
    intents: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    with_plan: list[dict[str, Any]] = []
    without_plan: list[dict[str, Any]] = []
    tags_planned: list[dict[str, Any]] = []
    tags_only: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for f in items:
        if f.message_pk not in current:
            raise KeyError(f.message_pk)
        frm = current[f.message_pk]
        to = MessageState(f.state)
        if f.results and f.results_are_new:
            intents += [
                {"message_pk": f.message_pk, "step": step, "intent_at": t, "done_at": t, "result": json.dumps(value, default=str)}
                for step, value in f.results.items()
            ]
        elif f.results:
            results += [
                {"b_message_pk": f.message_pk, "b_step": step, "b_result": json.dumps(value, default=str), "b_done_at": t}
                for step, value in f.results.items()
            ]
        if f.marks:
            marks += [
                {"message_pk": f.message_pk, "step": step, "intent_at": t, "done_at": t, "result": json.dumps(value)}
                for step, value in f.marks.items()
            ]
        if frm not in LEFT_ALONE:
            state = {
                "pk": f.message_pk,
                "b_from": frm.value,
                "b_state": check_message_move(frm, to, f.message_pk).value,
                "b_reason": f.reason,
                "b_updated_at": t,
            }
            current[f.message_pk] = to
            if f.plan_json is not None:
                with_plan.append(state | {"b_plan_json": f.plan_json})
            else:
                without_plan.append(state)
        if f.location_pk is not None:
            if f.location_pk not in copies:
                raise KeyError(f.location_pk)
            was = copies[f.location_pk]
            values: dict[str, Any] = {
                "pk": f.location_pk,
                "b_from": was.value,
                "b_tags": json.dumps(sorted(set(f.tags))),
                "b_state": check_location_move(was, f.location_state, f.location_pk).value,
                "b_updated_at": t,
            }
            copies[f.location_pk] = LocationState(f.location_state)
            if f.planned is not None:
                tags_planned.append(
                    values
                    | {
                        "b_tags_add": json.dumps(list(f.planned[0])),
                        "b_tags_remove": json.dumps(list(f.planned[1])),
                        "b_move_to": f.planned[2],
                    }
                )
            else:
                tags_only.append(values)
        event_rows += [
            {"message_pk": f.message_pk, "at": t, "event": name, "detail": detail}
            for name, detail in (*f.events_, (to.value, f.reason))
        ]
    if intents:
        c.execute(_INSERT_INTENT, intents)
    if results:
        c.execute(_SET_RESULT, results)
    if marks:
        c.execute(insert_ignore(c, journal), marks)
    if with_plan:
        c.execute(_SET_STATE_PLAN, with_plan)
    if without_plan:
        c.execute(_SET_STATE, without_plan)
    for f in items:
        if f.location_pk is not None and f.moved_to is not None:  # rare: a `move`, or the user moved it
            c.execute(
                update(locations)
                .where(locations.c.id == f.location_pk)
                .values(folder=f.moved_to.folder, item_key=f.moved_to.item_key, uidvalidity=f.moved_to.uidvalidity)
            )
    if tags_planned:
        c.execute(_TAG_LOCATION_PLANNED, tags_planned)
    if tags_only:
        c.execute(_TAG_LOCATION, tags_only)
    c.execute(INSERT_EVENT, event_rows)
    waiting: dict[int, list[int]] = {}
    for chunk in chunks(sorted({f.message_pk for f in items})):
        for message_pk, location_pk in c.execute(
            select(locations.c.message_pk, locations.c.id)
            .where(locations.c.message_pk.in_(chunk), locations.c.state.in_([s.value for s in LOCATION_OPEN]))
            .order_by(locations.c.id)
        ):
            waiting.setdefault(message_pk, []).append(location_pk)
    return [[pk for pk in waiting.get(f.message_pk, []) if pk != (f.location_pk or 0)] for f in items]


def reopen(c: Connection, t: datetime, message_pk: int, state: MessageState | str, redo: Sequence[str] = ()) -> int:
    """See `Ledger.reopen`: the message moves to `state`, its primary copy to new, the others
    to waiting; returns the primary copy. `redo`: journal steps whose results go too."""
    primary = c.execute(select(messages.c.primary_location).where(messages.c.id == message_pk)).scalar()
    if primary is None:
        raise KeyError(message_pk)  # no such message: nothing to reopen
    frm = message_states(c, [message_pk])[message_pk]
    if redo and frm in REDO_MOVES:
        # a done mail is sent again only to redo named CRM steps (`reconcile --fix`), never by
        # a plain reopen (`quarantine retry`, `reprocess`): that one the table refuses
        to = MessageState(state)
        if to not in REDO_MOVES[frm]:
            raise IllegalTransition("message", frm, to, message_pk)
    else:
        to = check_message_move(frm, state, message_pk)
    copies = c.execute(select(locations.c.id, locations.c.state).where(locations.c.message_pk == message_pk)).all()
    for pk, was in copies:
        check_location_move(was, LocationState.NEW if pk == primary else LocationState.WAITING, pk)
    c.execute(delete(journal).where(journal.c.message_pk == message_pk, journal.c.result.is_(None)))
    c.execute(delete(journal).where(journal.c.message_pk == message_pk, journal.c.step == CRM_DONE_MARK))
    if redo:
        c.execute(delete(journal).where(journal.c.message_pk == message_pk, journal.c.step.in_(list(redo))))
    c.execute(
        update(messages)
        .where(messages.c.id == message_pk, messages.c.state == frm.value)
        .values(state=to.value, plan_json=None, attempts=0, next_attempt_at=None, updated_at=t)
    )
    c.execute(
        update(locations)
        .where(locations.c.message_pk == message_pk, locations.c.id == primary)
        .values(state=LocationState.NEW.value, updated_at=t)
    )
    c.execute(
        update(locations)
        .where(locations.c.message_pk == message_pk, locations.c.id != primary)
        .values(state=LocationState.WAITING.value, updated_at=t)
    )
    c.execute(INSERT_EVENT, {"message_pk": message_pk, "at": t, "event": to.value, "detail": "sent through the rules again"})
    return int(primary)
