"""What the ledger knows of one folder's copies, read in bulk for `reconcile`.

One query per folder (its copies with their messages' state and identity) and one per
chunk of messages (which of them have an attach result in the journal): a folder of
10,000 copies is a few reads, never one per copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from gateway.ledger.database import chunks
from gateway.ledger.rows import LocationRow, aware
from gateway.ledger.schema import journal, locations, messages
from gateway.ledger.states import MessageState

# The journal steps whose result says the mail was stored in the CRM: a rule's attach, and a
# person's (`review resolve`, `review create`).
ATTACH_STEPS = ("attach", "review:attach")


@dataclass(frozen=True)
class KnownCopy:
    """A copy the ledger recorded in a folder, with what it knows of its message."""

    location: LocationRow
    state: MessageState | None  # its message's; None: recorded, never read (no message yet)
    message_id: str = ""
    content_hash: str = ""
    primary: bool = False  # the copy whose claim made the message: it did the CRM work
    created_at: datetime | None = None  # when the message was first recorded


def folder_copies(engine: Engine, source: str, account: str, folder: str) -> list[KnownCopy]:
    """Every copy recorded in this folder (any UIDVALIDITY), in one query."""
    q = (
        select(
            locations,
            messages.c.state.label("m_state"),
            messages.c.message_id.label("m_message_id"),
            messages.c.content_hash.label("m_content_hash"),
            messages.c.primary_location.label("m_primary"),
            messages.c.created_at.label("m_created_at"),
        )
        .select_from(locations.outerjoin(messages, locations.c.message_pk == messages.c.id))
        .where(locations.c.source == source, locations.c.account == account, locations.c.folder == folder)
        .order_by(locations.c.id)
    )
    with engine.connect() as c:
        rows = c.execute(q).all()
    out = []
    for r in rows:
        m = r._mapping
        out.append(
            KnownCopy(
                LocationRow.of(r),
                MessageState(m["m_state"]) if m["m_state"] is not None else None,
                m["m_message_id"] or "",
                m["m_content_hash"] or "",
                m["m_primary"] == m["id"],
                aware(m["m_created_at"]),
            )
        )
    return out


def attached(engine: Engine, message_pks: Sequence[int]) -> set[int]:
    """The messages whose journal holds an attach result (the mail was stored in the CRM)."""
    out: set[int] = set()
    with engine.connect() as c:
        for chunk in chunks(list(dict.fromkeys(message_pks))):
            out.update(
                c.execute(
                    select(journal.c.message_pk).where(
                        journal.c.message_pk.in_(chunk), journal.c.step.in_(ATTACH_STEPS), journal.c.result.is_not(None)
                    )
                ).scalars()
            )
    return out


def identities(engine: Engine, message_ids: Sequence[str]) -> dict[str, set[str]]:
    """Message-ID → the content hashes the ledger knows for it (each a mail of its own)."""
    out: dict[str, set[str]] = {}
    with engine.connect() as c:
        for chunk in chunks(list(dict.fromkeys(message_ids))):
            for mid, h in c.execute(
                select(messages.c.message_id, messages.c.content_hash).where(messages.c.message_id.in_(chunk))
            ):
                out.setdefault(mid, set()).add(h)
    return out
