"""The embedded CRM's prebuilt statements. Built once (per dialect where the insert differs)
and executed with bound parameters: SQLAlchemy memoizes a statement object's cache key and
compiled form, so a hot call costs the execution only, not the building of the statement.

Lookups start from an index on the value sought (`address_key`, `message_id`) and reach the
party tables by primary key through outer joins: never "every party_emails row of kind X".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.crm.base import PARTY_KINDS
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_rows import at, bl, em, ln, pe

__all__ = ["BY_DOMAIN", "EMAILS_OF", "EXISTS", "FIND", "FIND_EMAIL", "FIND_VERSION", "INSERT_PARTY", "THREAD", "WRITES", "Writes"]


def _name_columns(kind: str, t: sa.Table) -> tuple[Any, Any]:
    """(a, b) such that a party's name is `" ".join(p for p in (a, b) if p)`."""
    if kind == "account":
        return t.c.name.label("a"), sa.cast(sa.null(), sa.String).label("b")
    return t.c.first_name.label("a"), t.c.last_name.label("b")


def _with_parties(pairs: sa.Subquery, *extra: Any) -> sa.Select[Any]:
    """`pairs` (kind, party_id, …) with each party's id, a, b, created_at: one outer join per
    party table on its primary key, so the database starts from `pairs` (and its own index),
    never from a scan of every row of one kind; rows whose record is gone have id NULL."""
    lead, contact, account = (TABLES[k].alias(k) for k in PARTY_KINDS)
    joined: sa.FromClause = pairs
    for kind, t in (("lead", lead), ("contact", contact), ("account", account)):
        joined = joined.outerjoin(t, sa.and_(pairs.c.kind == kind, t.c.id == pairs.c.party_id))
    return sa.select(
        pairs.c.kind,
        *extra,
        sa.func.coalesce(lead.c.id, contact.c.id, account.c.id).label("id"),
        sa.func.coalesce(lead.c.first_name, contact.c.first_name, account.c.name).label("a"),
        sa.func.coalesce(lead.c.last_name, contact.c.last_name).label("b"),
        sa.func.coalesce(lead.c.created_at, contact.c.created_at, account.c.created_at).label("created_at"),
    ).select_from(joined)


# the records having the address key :k, any kind (find() keeps the kinds asked, in order)
_by_key = sa.select(pe.c.kind, pe.c.party_id).where(pe.c.address_key == sa.bindparam("k")).subquery("pe")
FIND = _with_parties(_by_key)


BY_DOMAIN = (
    sa.select(TABLES["account"].c.id, *_name_columns("account", TABLES["account"]), TABLES["account"].c.created_at)
    .where(TABLES["account"].c.domain == sa.bindparam("d"))
    .order_by(TABLES["account"].c.id)
)

# the records linked to the emails with a Message-ID in :mids, in the order of their first link
_linked = (
    sa.select(ln.c.kind, ln.c.party_id, sa.func.min(ln.c.id).label("first_link"))
    .join(em, em.c.id == ln.c.email_id)
    .where(em.c.message_id.in_(sa.bindparam("mids", expanding=True)))
    .group_by(ln.c.kind, ln.c.party_id)
    .subquery("linked")
)
THREAD = _with_parties(_linked).order_by(_linked.c.first_link)
FIND_EMAIL = (
    sa.select(em.c.id, em.c.message_id, em.c.content_hash)
    .where(em.c.message_id == sa.bindparam("mid"))
    .order_by(em.c.id)
    .limit(1)
)
EMAILS_OF = (
    sa.select(em.c.id, em.c.message_id, em.c.content_hash)
    .where(em.c.message_id.in_(sa.bindparam("mids", expanding=True)))
    .order_by(em.c.id)
)
FIND_VERSION = FIND_EMAIL.where(em.c.content_hash == sa.bindparam("h"))
EXISTS = {kind: sa.select(t.c.id).where(t.c.id == sa.bindparam("id")) for kind, t in TABLES.items()}
INSERT_PARTY = {kind: sa.insert(t).returning(*t.c) for kind, t in TABLES.items()}
_EMAIL_ID = sa.select(em.c.id).where(em.c.message_id == sa.bindparam("mid"), em.c.content_hash == sa.bindparam("h"))


class Writes:
    """The `INSERT … ON CONFLICT DO NOTHING` statements of one dialect."""

    def __init__(self, insert: Callable[[sa.Table], Any]) -> None:
        self.address = insert(pe).on_conflict_do_nothing(index_elements=["kind", "party_id", "address_key"])
        self.blob = insert(bl).on_conflict_do_nothing(index_elements=["sha256"])
        self.email = insert(em).on_conflict_do_nothing(index_elements=["message_id", "content_hash"]).returning(em.c.id)
        self.file = insert(at).on_conflict_do_nothing(index_elements=["email_id", "position"])
        self.link = insert(ln).on_conflict_do_nothing(index_elements=["email_id", "kind", "party_id"])


WRITES = {"postgresql": Writes(postgresql.insert), "sqlite": Writes(sqlite.insert)}
