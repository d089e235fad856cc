"""The ledger's intake writes: copies recorded where they were found (`receive_many`), and
copies linked to their message identity, the first one claiming it (`bind_many`).

Each runs on a connection the store opened a write transaction on, for a batch at once (see
gateway.ledger.outcomes for why).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway.ledger.database import CHUNK, chunks, insert_ignore
from gateway.ledger.outcomes import INSERT_EVENT
from gateway.ledger.refs import SourceRef
from gateway.ledger.rows import MESSAGE_ID_MAX, Bind, Binding, LocationRow, MessageRow
from gateway.ledger.schema import locations, message_addresses, messages
from gateway.ledger.states import IllegalTransition, LocationState, MessageState

# A new message starts as received (its copy parsed it) or processing (it goes straight to
# quarantine: nothing could parse it, or the budget gave up on it before its identity was known)
# or in review: a mail a person files by hand (found in their mailbox by its Message-ID) waits
# for nobody's rules, only for that person's decision, taken the moment after (never evaluated,
# and a worker finding the copy meanwhile finds its message final and leaves it alone).
FIRST_STATES = frozenset({MessageState.RECEIVED, MessageState.PROCESSING, MessageState.REVIEW})

INSERT_LOCATION = insert(locations)
_INSERT_ADDRESS = insert(message_addresses)
_LINK_LOCATION = (
    update(locations)
    .where(locations.c.id == bindparam("pk"))
    .values(message_pk=bindparam("b_message_pk"), updated_at=bindparam("b_updated_at"))
)
_LOCATIONS_BY_KEYS = select(locations).where(
    locations.c.source == bindparam("b_source"),
    locations.c.account == bindparam("b_account"),
    locations.c.folder == bindparam("b_folder"),
    locations.c.uidvalidity == bindparam("b_uv"),
    locations.c.item_key.in_(bindparam("b_keys", expanding=True)),
)


def new_location(ref: SourceRef, spool_path: str | None, declared_size: int | None, t: datetime) -> dict[str, Any]:
    """The row of a copy seen for the first time."""
    return {
        "source": ref.source,
        "account": ref.account,
        "folder": ref.folder,
        "uidvalidity": ref.uidvalidity,
        "item_key": ref.item_key,
        "state": LocationState.NEW.value,
        "spool_path": spool_path,
        "declared_size": declared_size,
        "tags_add": "[]",
        "tags_remove": "[]",
        "tags": "[]",
        "seen_at": t,
        "updated_at": t,
    }


def receive_many(c: Connection, t: datetime, items: Sequence[tuple[SourceRef, str | None, int | None]]) -> list[LocationRow]:
    """Record each copy (a known one keeps its row); rows in the order of `items`."""
    c.execute(insert_ignore(c, locations), [new_location(r, p, d, t) for r, p, d in items])
    groups: dict[tuple[Any, ...], list[str]] = {}
    for r, _, _ in items:
        groups.setdefault((r.source, r.account, r.folder, r.uidvalidity), []).append(r.item_key)
    found: dict[tuple[Any, ...], LocationRow] = {}
    for (source, account, folder, uv), keys in groups.items():
        for i in range(0, len(keys), CHUNK):
            for row in c.execute(
                _LOCATIONS_BY_KEYS,
                {"b_source": source, "b_account": account, "b_folder": folder, "b_uv": uv, "b_keys": keys[i : i + CHUNK]},
            ):
                loc = LocationRow.of(row)
                found[(source, account, folder, uv, loc.ref.item_key)] = loc
    return [found[(r.source, r.account, r.folder, r.uidvalidity, r.item_key)] for r, _, _ in items]


def bind_many(c: Connection, t: datetime, items: Sequence[Bind]) -> list[Binding]:
    """Claim each item's identity; Bindings in the order of `items`, each with its message's row.

    The insert is the claim: INSERT … ON CONFLICT DO NOTHING, then the row that holds the
    identity tells whether this copy made it (primary) or found it (a copy). Two copies of one
    mail in the same batch: the first is the primary. A copy linked before (a retry of this
    step) gets its link back unchanged."""
    for b in items:
        if MessageState(b.state) not in FIRST_STATES:
            raise IllegalTransition("new message", "(none)", MessageState(b.state), b.location_pk)
    out: dict[int, Binding] = {}
    linked: dict[int, int] = {}
    for chunk in chunks([b.location_pk for b in items]):
        linked.update(
            c.execute(
                select(locations.c.id, locations.c.message_pk).where(
                    locations.c.id.in_(chunk), locations.c.message_pk.is_not(None)
                )
            ).all()
        )
    fresh = [b for b in items if b.location_pk not in linked]
    if fresh:
        # In identity order (stable: of two copies in the batch the first is the primary), so
        # two processes claiming the same mails lock their rows in one order, never a cycle.
        c.execute(
            insert_ignore(c, messages),
            [
                {
                    "identity": b.identity,
                    "message_id": b.message_id[:MESSAGE_ID_MAX],
                    "content_hash": b.content_hash,
                    "state": MessageState(b.state).value,
                    "reason": b.reason,
                    "attempts": 0,
                    "spool_path": b.spool_path,
                    "primary_location": b.location_pk,
                    "subject": b.subject[:500],
                    "from_address": b.from_address[:320],
                    "size": b.size,
                    "created_at": t,
                    "updated_at": t,
                }
                for b in sorted(fresh, key=lambda b: b.identity)
            ],
        )
    holders: dict[str, MessageRow] = {}
    for chunk in chunks(sorted({b.identity for b in fresh})):
        for r in c.execute(select(messages).where(messages.c.identity.in_(chunk))):
            holders[r.identity] = MessageRow.of(r)
    links, address_rows, copy_events = [], [], []
    for b in fresh:
        held = holders[b.identity]
        links.append({"pk": b.location_pk, "b_message_pk": held.id, "b_updated_at": t})
        if held.primary_location == b.location_pk:
            address_rows += [{"message_pk": held.id, "address_key": k} for k in sorted({a[:320] for a in b.addresses if a})]
            out[b.location_pk] = Binding(held.id, True, MessageState(held.state), held)
        else:
            copy_events.append(
                {"message_pk": held.id, "at": t, "event": "copy", "detail": f"another copy at {b.label or b.location_pk}"}
            )
            out[b.location_pk] = Binding(held.id, False, MessageState(held.state), held)
    if links:
        c.execute(_LINK_LOCATION, links)
    if address_rows:
        c.execute(_INSERT_ADDRESS, address_rows)
    if copy_events:
        c.execute(INSERT_EVENT, copy_events)
    for location_pk, message_pk in linked.items():  # bound before (a retry of this step)
        row = MessageRow.of(c.execute(select(messages).where(messages.c.id == message_pk)).one())
        out[location_pk] = Binding(row.id, row.primary_location == location_pk, MessageState(row.state), row)
    return [out[b.location_pk] for b in items]
