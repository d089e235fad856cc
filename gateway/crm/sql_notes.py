"""Notes of the embedded CRM: the `notes` table (migration 0004), written and read inside the
transactions `SqlConnector` opens.

Idempotency is the table's: unique on (key, kind, party_id), written with
`INSERT … ON CONFLICT DO NOTHING`, so a replay, or two workers at once, leave one note per
record; the ids are then read back by key, whoever wrote them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.crm.sql_models import Note

nt = cast(sa.Table, Note.__table__)

_INSERT = {
    "postgresql": postgresql.insert(nt).on_conflict_do_nothing(index_elements=["key", "kind", "party_id"]),
    "sqlite": sqlite.insert(nt).on_conflict_do_nothing(index_elements=["key", "kind", "party_id"]),
}
_BY_KEY = sa.select(nt.c.id, nt.c.kind, nt.c.party_id).where(nt.c.key == sa.bindparam("key"))


def write(conn: sa.Connection, targets: Sequence[tuple[str, int]], values: Mapping[str, Any]) -> list[str]:
    """Put the note `values` (key, title, text, owner, message_id, created_at) on each
    (kind, party_id) that lacks one with its key; the note ids of all targets, in order."""
    rows = [dict(values, kind=kind, party_id=pid) for kind, pid in dict.fromkeys(targets)]
    if rows:
        conn.execute(_INSERT[conn.dialect.name], rows if len(rows) > 1 else rows[0])
    ids = {(row.kind, row.party_id): str(row.id) for row in conn.execute(_BY_KEY, {"key": values["key"]})}
    return [ids[target] for target in dict.fromkeys(targets)]


def read(conn: sa.Connection, kind: str, party_id: int) -> list[dict[str, Any]]:
    """The notes on one record, oldest first."""
    q = sa.select(nt).where(nt.c.kind == kind, nt.c.party_id == party_id).order_by(nt.c.id)
    return [
        {
            "id": row["id"],
            "key": row["key"],
            "title": row["title"],
            "text": row["text"],
            "owner": row["owner"],
            "message_id": row["message_id"],
            "created_at": row["created_at"].isoformat(),
        }
        for row in conn.execute(q).mappings()
    ]


def delete(conn: sa.Connection, kind: str, party_id: int) -> None:
    """A record erased takes its notes."""
    conn.execute(sa.delete(nt).where(nt.c.kind == kind, nt.c.party_id == party_id))
