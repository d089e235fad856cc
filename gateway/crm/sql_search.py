"""Finding records of the embedded CRM by what a person types (the console's and the API's
record search), and who may see a record.

Who sees what: a record's `owner` is the CRM user it is assigned to (the source's `crm_user`
for the records the gateway makes); a record without owner (`""`) is shared, seen by everyone.
A person sees the records of their CRM users and the shared ones; an admin asks with no users
and sees all.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from gateway.crm.base import PartyKind, PartyRef, RecordHit
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_rows import new_ref, party_id, pe


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _visible(t: sa.Table, users: frozenset[str] | None) -> sa.ColumnElement[bool]:
    if users is None:
        return sa.true()
    return sa.or_(t.c.owner == "", sa.func.lower(t.c.owner).in_(sorted(users)))


def search(
    conn: sa.Connection, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int
) -> list[RecordHit]:
    pattern = _like(text.strip())
    hits: list[RecordHit] = []
    for kind in kinds:
        t = TABLES[kind]
        names = [t.c.name, t.c.domain] if kind == "account" else [t.c.first_name, t.c.last_name]
        if kind == "lead":
            names.append(t.c.company)
        by_address = sa.select(pe.c.party_id).where(pe.c.kind == kind, pe.c.address_key.like(pattern, escape="\\"))
        full_name = sa.func.lower(names[0] + " " + names[1]) if kind != "account" else sa.func.lower(names[0])
        match = sa.or_(
            full_name.like(pattern, escape="\\"),
            *(sa.func.lower(c).like(pattern, escape="\\") for c in names),
            t.c.id.in_(by_address),
        )
        rows = conn.execute(sa.select(t).where(match, _visible(t, users)).order_by(t.c.id).limit(limit)).all()
        emails: dict[int, list[str]] = {}
        if rows:
            q = sa.select(pe.c.party_id, pe.c.address).where(pe.c.kind == kind, pe.c.party_id.in_([r.id for r in rows]))
            for pid, address in conn.execute(q.order_by(pe.c.id)):
                emails.setdefault(pid, []).append(address)
        for r in rows:
            hits.append(
                RecordHit(
                    ref=new_ref(kind, r),
                    emails=tuple(emails.get(r.id, ())),
                    domain=r.domain if kind == "account" else "",
                    owner=r.owner,
                )
            )
    return hits[:limit]


def visible_to(conn: sa.Connection, ref: PartyRef, users: frozenset[str]) -> bool:
    t = TABLES[ref.kind]
    return conn.execute(sa.select(t.c.id).where(t.c.id == party_id(ref), _visible(t, users))).first() is not None
