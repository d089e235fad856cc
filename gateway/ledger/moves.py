"""The ledger's one-at-a-time state moves: a message moved to a state or scheduled for a retry,
a copy's state changed (guarded by the states it may come from), and the copies a dead
process left mid-write sent back to wait.

Each runs on a connection the store opened a write transaction on. As in
gateway.ledger.outcomes, the current state is read (locked on PostgreSQL) in the same
transaction, checked against the transition tables (gateway.ledger.states), and the UPDATE is
guarded by it: concurrent workers never both make one move, and an illegal one raises
`IllegalTransition` before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.ledger import outcomes
from gateway.ledger.rows import LocationRow, MessageRow
from gateway.ledger.schema import events, locations, messages
from gateway.ledger.states import TERMINAL, LocationState, MessageState, check_location_move, check_message_move


def set_state(
    c: Connection,
    t: datetime,
    message_pk: int,
    state: MessageState | str,
    reason: str,
    plan_json: str | None,
    event_detail: str | None,
    only_from: Sequence[MessageState | str] | None,
) -> MessageRow | None:
    """Move a message to `state`; the new row, or None when it is not in `only_from` (or does
    not exist)."""
    frm = outcomes.message_states(c, [message_pk]).get(message_pk)
    if frm is None or (only_from is not None and frm not in {MessageState(s) for s in only_from}):
        return None
    to = check_message_move(frm, state, message_pk)
    values: dict[str, Any] = {"state": to.value, "reason": reason, "updated_at": t}
    if plan_json is not None:
        values["plan_json"] = plan_json
    if to != MessageState.RETRYING:
        values["next_attempt_at"] = None
    c.execute(update(messages).where(messages.c.id == message_pk, messages.c.state == frm.value).values(**values))
    c.execute(
        insert(events).values(
            message_pk=message_pk, at=t, event=to.value, detail=event_detail if event_detail is not None else reason
        )
    )
    return message_row(c, message_pk)


def schedule_retry(c: Connection, t: datetime, message_pk: int, reason: str, delay: float) -> int:
    """Retry a message `delay` seconds from `t`; its attempts so far, or 0 (and nothing
    changed) when it is in a final state or does not exist."""
    frm = outcomes.message_states(c, [message_pk]).get(message_pk)
    if frm is None or frm in TERMINAL:
        return 0
    to = check_message_move(frm, MessageState.RETRYING, message_pk)
    attempts = (c.execute(select(messages.c.attempts).where(messages.c.id == message_pk)).scalar() or 0) + 1
    c.execute(
        update(messages)
        .where(messages.c.id == message_pk, messages.c.state == frm.value)
        .values(state=to.value, reason=reason, attempts=attempts, next_attempt_at=t + timedelta(seconds=delay), updated_at=t)
    )
    c.execute(
        insert(events).values(
            message_pk=message_pk,
            at=t,
            event=to.value,
            detail=f"attempt {attempts} failed: {reason}; next in {delay:.0f}s",
        )
    )
    return attempts


def move_location(
    c: Connection,
    t: datetime,
    location_pk: int,
    from_states: Sequence[LocationState | str] | None,
    to_state: LocationState | str,
    **values: Any,
) -> LocationRow | None:
    """Move a copy to `to_state` with `values`; the new row, or None when it is not in
    `from_states`. With `from_states` None any state may move, and a missing copy raises
    KeyError."""
    frm = outcomes.location_states(c, [location_pk]).get(location_pk)
    if frm is None:
        if from_states is None:
            raise KeyError(location_pk)
        return None
    if from_states is not None and frm not in {LocationState(s) for s in from_states}:
        return None
    to = check_location_move(frm, to_state, location_pk)
    c.execute(
        update(locations)
        .where(locations.c.id == location_pk, locations.c.state == frm.value)
        .values(state=to.value, updated_at=t, **values)
    )
    return LocationRow.of(c.execute(select(locations).where(locations.c.id == location_pk)).one())


def reset_interrupted(c: Connection, t: datetime, owns: Callable[[str, str], bool] | None = None) -> int:
    """Every copy left 'tagging' (in the mailboxes `owns` owns) waits again; how many there were."""
    check_location_move(LocationState.TAGGING, LocationState.WAITING)
    tagging = locations.c.state == LocationState.TAGGING.value
    if owns is None:
        return c.execute(update(locations).where(tagging).values(state=LocationState.WAITING.value, updated_at=t)).rowcount
    rows = c.execute(select(locations.c.id, locations.c.source, locations.c.account).where(tagging)).all()
    n = 0
    for r in rows:
        if owns(r.source, r.account):
            n += c.execute(
                update(locations).where(locations.c.id == r.id, tagging).values(state=LocationState.WAITING.value, updated_at=t)
            ).rowcount
    return n


def message_row(c: Connection, message_pk: int) -> MessageRow:
    return MessageRow.of(c.execute(select(messages).where(messages.c.id == message_pk)).one())
