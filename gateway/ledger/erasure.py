"""Erasing a person from the ledger (`forget`): their messages become tombstones.

The rows stay (state `forgotten`, no subject, sender, plan or history) with their locations,
so the copies still in a mailbox are not processed again and the person is not re-created
from them. Every state may move to `forgotten`; the check still runs, so a state added later
without that move is caught here rather than erased silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, update

from gateway.ledger import outcomes
from gateway.ledger.schema import events, journal, locations, message_addresses, messages
from gateway.ledger.states import MessageState, check_message_move


def erase_messages(c: Connection, t: datetime, pks: Sequence[int]) -> None:
    """Turn the messages `pks` into tombstones, in the caller's write transaction."""
    for pk, frm in outcomes.message_states(c, pks).items():
        check_message_move(frm, MessageState.FORGOTTEN, pk)
    for table, col in (
        (events, events.c.message_pk),
        (journal, journal.c.message_pk),
        (message_addresses, message_addresses.c.message_pk),
    ):
        c.execute(delete(table).where(col.in_(pks)))
    c.execute(
        update(messages)
        .where(messages.c.id.in_(pks))
        .values(
            state=MessageState.FORGOTTEN.value,
            reason="erased on request",
            subject="",
            from_address="",
            plan_json=None,
            spool_path=None,
            next_attempt_at=None,
            updated_at=t,
        )
    )
    c.execute(update(locations).where(locations.c.message_pk.in_(pks)).values(spool_path=None))
