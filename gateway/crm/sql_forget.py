"""Forgetting an address in the embedded CRM (`gateway forget`): the records the gateway made
for it go with their links, notes and addresses; a record a person made stays and only loses
this address's mail; emails no record links to any more go with their blobs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from gateway.crm import sql_notes
from gateway.crm.base import PartyRef
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_rows import at, bl, chunks, em, ln, participant_keys, party_id, pe

__all__ = ["forget"]


def forget(conn: sa.Connection, k: str, doomed: Sequence[PartyRef], kept: Sequence[PartyRef]) -> tuple[int, int]:
    """Inside the caller's transaction: delete `doomed`, unlink the mail of address key `k` from
    `kept`; (emails unlinked or removed, emails removed)."""
    touched: set[int] = set()
    for ref in doomed:
        pid = party_id(ref)
        links = sa.select(ln.c.email_id).where(ln.c.kind == ref.kind, ln.c.party_id == pid)
        touched.update(conn.execute(links).scalars())
        conn.execute(sa.delete(ln).where(ln.c.kind == ref.kind, ln.c.party_id == pid))
        sql_notes.delete(conn, ref.kind, pid)
        conn.execute(sa.delete(pe).where(pe.c.kind == ref.kind, pe.c.party_id == pid))
        conn.execute(sa.delete(TABLES[ref.kind]).where(TABLES[ref.kind].c.id == pid))
    for ref in kept:  # a record a person made stays; it loses this address's mail
        pid = party_id(ref)
        q = (
            sa.select(em.c.id, em.c.from_address, em.c.to_addresses, em.c.cc_addresses)
            .join(ln, ln.c.email_id == em.c.id)
            .where(ln.c.kind == ref.kind, ln.c.party_id == pid)
        )
        mine = [row.id for row in conn.execute(q) if k in participant_keys(row)]
        for chunk in chunks(mine):
            conn.execute(sa.delete(ln).where(ln.c.kind == ref.kind, ln.c.party_id == pid, ln.c.email_id.in_(chunk)))
        touched.update(mine)
    removed = _delete_orphans(conn, sorted(touched))
    return len(touched), removed


def _delete_orphans(conn: sa.Connection, email_ids: list[int]) -> int:
    """Delete the emails among these that no record links to any more, and their blobs."""
    removed = 0
    for chunk in chunks(email_ids):
        linked = sa.select(ln.c.email_id).where(ln.c.email_id == em.c.id).exists()
        orphans = list(conn.execute(sa.select(em.c.id).where(em.c.id.in_(chunk), ~linked)).scalars())
        if not orphans:
            continue
        shas = set(conn.execute(sa.select(at.c.sha256).where(at.c.email_id.in_(orphans))).scalars())
        shas |= {s for s in conn.execute(sa.select(em.c.raw_sha256).where(em.c.id.in_(orphans))).scalars() if s}
        conn.execute(sa.update(em).where(em.c.version_of.in_(orphans)).values(version_of=None))
        conn.execute(sa.delete(at).where(at.c.email_id.in_(orphans)))
        conn.execute(sa.delete(ln).where(ln.c.email_id.in_(orphans)))
        conn.execute(sa.delete(em).where(em.c.id.in_(orphans)))
        for sha in shas:
            used = sa.or_(
                sa.select(at.c.id).where(at.c.sha256 == sha).exists(),
                sa.select(em.c.id).where(em.c.raw_sha256 == sha).exists(),
            )
            if not conn.execute(sa.select(used)).scalar():
                conn.execute(sa.delete(bl).where(bl.c.sha256 == sha))
        removed += len(orphans)
    return removed
