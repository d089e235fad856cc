"""The embedded CRM's side of the contact sync (gateway/crm/sync.py): the change feed that
migration 0006's triggers keep in `crm_changes`, and contacts read and written whole.

Writes go through the connector's writing engine (SQLite: `BEGIN IMMEDIATE`), so they queue
behind the mail pipeline's attaches like any other CRM write; the triggers record them in the
feed in the same transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gateway.crm import sql_notes
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_engine import translate_errors
from gateway.crm.sql_models import CrmChange, utcnow
from gateway.crm.sql_rows import clean, ln, pe
from gateway.crm.sync import Change, ContactFields, SyncContact
from gateway.errors import Permanent
from gateway.message import addresses

ct = TABLES["contact"]
ac = TABLES["account"]
ch: sa.Table = CrmChange.__table__  # type: ignore[assignment]
_COLUMNS = (
    "first_name",
    "last_name",
    "title",
    "phone_work",
    "phone_mobile",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
)


def _id(contact_id: str) -> int:
    try:
        return int(contact_id)
    except ValueError:
        raise Permanent(f"not an id of the embedded CRM: contact:{contact_id}") from None


class SqlContactSync:
    """`ContactSync` on the embedded CRM's engine; `SqlConnector.contact_sync()` makes one."""

    def __init__(self, engine: sa.Engine) -> None:
        self._reader = engine
        self._writer = engine.execution_options(crm_write=True)

    @translate_errors
    def changes_since(self, version: int, limit: int = 1000) -> tuple[list[Change], int]:
        q = sa.select(ch).where(ch.c.version > version).order_by(ch.c.version).limit(limit)
        with self._reader.connect() as conn, conn.begin():
            rows = list(conn.execute(q))
        last: dict[tuple[str, int], Change] = {}
        out: list[Change] = []
        for row in rows:  # in version order: the last entry of a record is its state
            key = (row.kind, row.party_id)
            was = last.pop(key, None)
            change = Change(row.kind, str(row.party_id), row.version, row.op == "delete", row.owner or "", row.changed_at)
            if was is not None and was.deleted and not change.deleted:
                out.append(was)  # the id came back as another record: the old one's delete still counts
            last[key] = change
        return sorted([*out, *last.values()], key=lambda c: c.version), (rows[-1].version if rows else version)

    @translate_errors
    def get_contact(self, contact_id: str) -> SyncContact | None:
        with self._reader.connect() as conn, conn.begin():
            return self._read(conn, _id(contact_id))

    def _read(self, conn: sa.Connection, pid: int) -> SyncContact | None:
        mgr = ct.alias("mgr")
        q = (
            sa.select(ct, ac.c.name.label("account_name"), mgr.c.first_name.label("m_first"), mgr.c.last_name.label("m_last"))
            .select_from(ct.outerjoin(ac, ac.c.id == ct.c.account_id).outerjoin(mgr, mgr.c.id == ct.c.manager_id))
            .where(ct.c.id == pid)
        )
        row = conn.execute(q).mappings().first()
        if row is None:
            return None
        emails = conn.execute(
            sa.select(pe.c.address).where(pe.c.kind == "contact", pe.c.party_id == pid).order_by(pe.c.id)
        ).scalars()
        version = conn.execute(sa.select(sa.func.max(ch.c.version)).where(ch.c.kind == "contact", ch.c.party_id == pid)).scalar()
        data = ContactFields(
            **{c: row[c] or "" for c in _COLUMNS},
            organization=row["account_name"] or "",
            emails=tuple(emails),
            manager=" ".join(p for p in (row["m_first"], row["m_last"]) if p),
        )
        born = row["created_at"].isoformat() if row["created_at"] is not None else ""
        return SyncContact(str(pid), row["owner"] or "", data, version or 0, born)

    @translate_errors
    def create_contact(self, data: ContactFields, owner: str, key: str) -> SyncContact:
        if not key or len(key) > 255:
            raise Permanent(f"a sync key must be 1 to 255 characters, not {len(key)}")
        with self._writer.connect() as conn, conn.begin():
            pid = conn.execute(sa.select(ct.c.id).where(ct.c.sync_key == key)).scalar()
            if pid is None:  # the first time: the key is what a replay finds
                pid = conn.execute(
                    sa.insert(ct)
                    .values(owner=clean(owner), fields={}, created_by_gateway=True, created_at=utcnow(), sync_key=key)
                    .returning(ct.c.id)
                ).scalar_one()
                self._write(conn, pid, data)
            found = self._read(conn, pid)
        assert found is not None
        return found

    @translate_errors
    def update_contact(self, contact_id: str, data: ContactFields) -> SyncContact:
        pid = _id(contact_id)
        with self._writer.connect() as conn, conn.begin():
            if conn.execute(sa.select(ct.c.id).where(ct.c.id == pid)).first() is None:
                raise Permanent(f"no such record in the CRM: contact:{pid}")
            self._write(conn, pid, data)
            found = self._read(conn, pid)
        assert found is not None
        return found

    @translate_errors
    def delete_contact(self, contact_id: str) -> None:
        """The record, its addresses, its notes and its mail links (the mails stay stored: other
        records may hold them; `forget` is the way to erase a person's mail)."""
        pid = _id(contact_id)
        with self._writer.connect() as conn, conn.begin():
            conn.execute(sa.delete(ct).where(ct.c.id == pid))
            conn.execute(sa.delete(pe).where(pe.c.kind == "contact", pe.c.party_id == pid))
            conn.execute(sa.delete(ln).where(ln.c.kind == "contact", ln.c.party_id == pid))
            sql_notes.delete(conn, "contact", pid)

    def _write(self, conn: sa.Connection, pid: int, data: ContactFields) -> None:
        values: dict[str, Any] = {
            c: clean(getattr(data, c))[:255] if c in ("first_name", "last_name") else clean(getattr(data, c)) for c in _COLUMNS
        }
        values["account_id"] = self._account(conn, data.organization)
        values["manager_id"] = self._manager(conn, data.manager, pid)
        conn.execute(sa.update(ct).where(ct.c.id == pid).values(**values))
        self._set_emails(conn, pid, data.emails)

    def _account(self, conn: sa.Connection, name: str) -> int | None:
        """The account named so (case-insensitive), created when there is none."""
        name = clean(name).strip()[:255]
        if not name:
            return None
        found = conn.execute(sa.select(ac.c.id).where(sa.func.lower(ac.c.name) == name.lower()).order_by(ac.c.id)).scalar()
        if found is not None:
            return int(found)
        return int(
            conn.execute(
                sa.insert(ac)
                .values(name=name, domain="", owner="", fields={}, created_by_gateway=True, created_at=utcnow())
                .returning(ac.c.id)
            ).scalar_one()
        )

    def _manager(self, conn: sa.Connection, name: str, pid: int) -> int | None:
        """The one other contact with this display name; none when no or several match."""
        name = name.strip()
        if not name:
            return None
        full = sa.func.trim(ct.c.first_name + " " + ct.c.last_name)
        ids = list(conn.execute(sa.select(ct.c.id).where(full == name, ct.c.id != pid).limit(2)).scalars())
        return int(ids[0]) if len(ids) == 1 else None

    def _set_emails(self, conn: sa.Connection, pid: int, emails: tuple[str, ...]) -> None:
        """The addresses become exactly these, in this order (rewritten only when they differ)."""
        wanted: dict[str, str] = {}
        for address in emails:
            k = clean(addresses.key(address))
            if k and k not in wanted:
                wanted[k] = clean(addresses.normalize(address))
        have = list(
            conn.execute(
                sa.select(pe.c.address, pe.c.address_key).where(pe.c.kind == "contact", pe.c.party_id == pid).order_by(pe.c.id)
            )
        )
        if [(r.address, r.address_key) for r in have] == [(a, k) for k, a in wanted.items()]:
            return
        conn.execute(sa.delete(pe).where(pe.c.kind == "contact", pe.c.party_id == pid))
        if wanted:
            conn.execute(
                sa.insert(pe),
                [dict(kind="contact", party_id=pid, address=a, address_key=k) for k, a in wanted.items()],
            )
