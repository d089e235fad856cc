"""The embedded CRM (`crm.backend: sql`): accounts, contacts, leads and their mail in
SQLite or PostgreSQL, through SQLAlchemy 2.

Design notes:
- Lookups go through `party_emails.address_key` (`gateway.message.addresses.key`) with `=` and bound
  parameters only, so `%`, `_`, `\\`, quotes and non-ASCII addresses match exactly.
- `attach` writes the email row, its blobs and its links in one short transaction and uses
  `INSERT … ON CONFLICT DO NOTHING` then re-reads, so concurrent attaches of one mail end
  with one row (PostgreSQL waits for the other inserter; SQLite takes the write lock up front
  with `BEGIN IMMEDIATE`, so a reader never has to upgrade its lock and hit "locked"):
  gateway/crm/sql_attach.py.
- Hot statements are built once at import and run with bound parameters (SQLAlchemy then
  reuses their cache keys and compiled SQL): gateway/crm/sql_statements.py; a read of one
  statement runs without BEGIN.
- Rows to and from the gateway's values: gateway/crm/sql_rows.py; `forget`:
  gateway/crm/sql_forget.py; notes (`add_note`) live in `notes`, unique per (key, record):
  gateway/crm/sql_notes.py.
- Errors leave as `Retryable` (locked, refused, timeouts, deadlocks) or `Permanent` (the data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from gateway.crm import migrations, sql_attach, sql_dump, sql_forget, sql_notes, sql_search
from gateway.crm.base import (
    PARTY_KINDS,
    EmailRecord,
    EmailRef,
    ForgetReport,
    NoteData,
    NoteRef,
    PartyData,
    PartyKind,
    PartyRef,
    RecordHit,
    register_connector,
)
from gateway.crm.config_models import SqlConfig
from gateway.crm.sql_contacts import SqlContactSync
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_engine import make_engine
from gateway.crm.sql_engine import translate_errors as _translate
from gateway.crm.sql_models import utcnow
from gateway.crm.sql_rows import CHUNK, bl, chunks, clean, em, new_ref, party_id, party_values, pe, ref_from_row
from gateway.crm.sql_statements import (
    BY_DOMAIN,
    EMAILS_OF,
    EXISTS,
    FIND,
    FIND_EMAIL,
    FIND_VERSION,
    INSERT_PARTY,
    THREAD,
    WRITES,
)
from gateway.errors import Permanent
from gateway.message import addresses

__all__ = ["SqlConnector", "make_engine"]


class SqlConnector:
    """The embedded CRM. `SqlConnector("sqlite:///var/crm.db")`; the schema is upgraded on open."""

    name = "sql"

    @_translate
    def __init__(self, url: str, *, busy_timeout: float = 30) -> None:
        self.url = url
        self._engine = make_engine(url, busy_timeout)
        self._w = WRITES[self._engine.dialect.name]
        # one statement reads need no BEGIN (SQLite: the statement is its own read transaction)
        self._single = self._engine.execution_options(crm_single_read=True)
        self._writer = self._engine.execution_options(crm_write=True)
        migrations.upgrade(self._engine)

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._writer.connect() as conn, conn.begin():
            yield conn

    def _query(self, stmt: sa.Executable, params: dict[str, Any]) -> list[sa.Row[Any]]:
        """All rows of one read statement, run on its own."""
        with self._single.connect() as conn:
            return list(conn.execute(stmt, params))

    # -- lookups -----------------------------------------------------------------------

    @_translate
    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        k = addresses.key(address)
        if not k:
            return []
        wanted = {kind: pos for pos, kind in enumerate(dict.fromkeys(kinds))}  # the order is the precedence
        for kind in wanted:
            if kind not in TABLES:
                raise Permanent(f"unknown record kind {kind!r}")
        rows = [row for row in self._query(FIND, {"k": k}) if row.kind in wanted and row.id is not None]
        rows.sort(key=lambda row: (wanted[row.kind], row.id))
        return [ref_from_row(row.kind, row) for row in rows]

    @_translate
    def find_by_domain(self, domain: str) -> list[PartyRef]:
        d = addresses.domain_of("x@" + domain.strip().lstrip("@"))
        if not d:
            return []
        return [ref_from_row("account", row) for row in self._query(BY_DOMAIN, {"d": d})]

    @_translate
    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        if content_hash is None:
            rows = self._query(FIND_EMAIL, {"mid": message_id})
        else:
            rows = self._query(FIND_VERSION, {"mid": message_id, "h": content_hash})
        return EmailRef(str(rows[0].id), rows[0].message_id, rows[0].content_hash) if rows else None

    @_translate
    def emails_for(self, message_ids: Sequence[str]) -> dict[str, list[EmailRef]]:
        """gateway.crm.base.EmailLookup: one query per chunk of Message-IDs."""
        out: dict[str, list[EmailRef]] = {}
        ids = list(dict.fromkeys(m for m in message_ids if m))
        with self._read() as conn:
            for chunk in chunks(ids):
                for row in conn.execute(EMAILS_OF, {"mids": list(chunk)}):
                    out.setdefault(row.message_id, []).append(EmailRef(str(row.id), row.message_id, row.content_hash))
        return out

    @_translate
    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        ids = list(dict.fromkeys(m for m in message_ids if m))
        if not ids:
            return []
        found: dict[tuple[str, int], PartyRef] = {}
        if len(ids) <= CHUNK:
            rows = self._query(THREAD, {"mids": ids})
        else:
            with self._read() as conn:
                rows = [row for chunk in chunks(ids) for row in conn.execute(THREAD, {"mids": list(chunk)})]
        for row in rows:  # by chunk, then by first link: the order of the links themselves
            if row.id is not None:
                found.setdefault((row.kind, row.id), ref_from_row(row.kind, row))
        return list(found.values())

    # -- writes ------------------------------------------------------------------------

    @_translate
    def create(self, kind: PartyKind, data: PartyData) -> PartyRef:
        return self._create(kind, data, by_gateway=True)

    @_translate
    def import_party(self, kind: PartyKind, data: PartyData) -> PartyRef:
        """A record a person made (not the gateway): `forget` keeps it, only unlinking mail."""
        return self._create(kind, data, by_gateway=False)

    def _create(self, kind: PartyKind, data: PartyData, by_gateway: bool) -> PartyRef:
        if kind not in TABLES:
            raise Permanent(f"unknown record kind {kind!r}")
        values, extra = party_values(kind, data)
        values.update(owner=clean(data.owner), fields=extra, created_by_gateway=by_gateway, created_at=utcnow())
        with self._write() as conn:
            if kind != "account" and data.account is not None:
                values["account_id"] = self._existing_id(conn, data.account, want="account")
            row = conn.execute(INSERT_PARTY[kind], values).one()
            self._add_addresses(conn, kind, row.id, data.emails)
        return new_ref(kind, row)

    def _add_addresses(self, conn: sa.Connection, kind: str, pid: int, emails: Iterable[str]) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for address in emails:
            k = addresses.key(address)
            if k and clean(k) not in rows:  # the first spelling of a key wins, as the constraint would have it
                address = clean(addresses.normalize(address))
                rows[clean(k)] = dict(kind=kind, party_id=pid, address=address, address_key=clean(k))
        if rows:
            params = list(rows.values())
            conn.execute(self._w.address, params if len(params) > 1 else params[0])

    @_translate
    def add_email_address(self, ref: PartyRef, address: str) -> None:
        """Give an existing record one more address (idempotent)."""
        with self._write() as conn:
            self._add_addresses(conn, ref.kind, self._existing_id(conn, ref), [address])

    def _existing_id(self, conn: sa.Connection, ref: PartyRef, want: str | None = None) -> int:
        if want and ref.kind != want:
            raise Permanent(f"{ref.label()} is not an {want}")
        pid = party_id(ref)
        if conn.execute(EXISTS[ref.kind], {"id": pid}).first() is None:
            raise Permanent(f"no such record in the CRM: {ref.label()}")
        return pid

    @_translate
    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        """One transaction of a few statements: one probe reads what is stored already (the
        email, its links, the blobs, the parents), then only what is missing is written, each
        table with one (executemany) INSERT … ON CONFLICT DO NOTHING."""
        with self._write() as conn:
            return sql_attach.attach(conn, self._w, parents, mail)

    @_translate
    def attach_many(self, items: Sequence[tuple[Sequence[PartyRef], EmailRecord]]) -> list[EmailRef]:
        """`attach` for several mails in one transaction: all are stored, or none (a failure
        rolls the batch back, and the gateway attaches its mails one by one instead)."""
        with self._write() as conn:
            return [sql_attach.attach(conn, self._w, parents, mail) for parents, mail in items]

    # -- notes -------------------------------------------------------------------------

    @_translate
    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """One transaction: every parent checked, then one INSERT … ON CONFLICT DO NOTHING on
        the `notes` table's (key, record) constraint (see gateway/crm/sql_notes.py)."""
        if not note.key or len(note.key) > 255:
            raise Permanent(f"a note key must be 1 to 255 characters, not {len(note.key)}")
        values = dict(
            key=note.key,
            title=clean(note.title),
            text=clean(note.text),
            owner=clean(note.owner)[:320],
            message_id=clean(note.message_id),
            created_at=utcnow(),
        )
        with self._write() as conn:
            targets = [(ref.kind, self._existing_id(conn, ref)) for ref in parents]
            return NoteRef(note.key, tuple(sql_notes.write(conn, targets, values)))

    @_translate
    def notes(self, ref: PartyRef) -> list[dict[str, Any]]:
        """The notes on one record, oldest first (tests, and a person's `crm` look-ups)."""
        with self._read() as conn:
            return sql_notes.read(conn, ref.kind, party_id(ref))

    # -- forget ------------------------------------------------------------------------

    @_translate
    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        k = addresses.key(address)
        refs = self.find(address, PARTY_KINDS) if k else []
        doomed = [r for r in refs if made_by_gateway(r)]
        kept = [r for r in refs if r not in doomed]
        with self._write() as conn:
            touched, removed = sql_forget.forget(conn, k, doomed, kept)
        return ForgetReport(parties=tuple(doomed), emails_removed=removed, emails_unlinked=touched - removed)

    @_translate
    def made_by_gateway(self, ref: PartyRef) -> bool:
        """Whether the gateway created this record (the default `forget` callback)."""
        t = TABLES[ref.kind]
        with self._read() as conn:
            return bool(conn.execute(sa.select(t.c.created_by_gateway).where(t.c.id == party_id(ref))).scalar())

    # -- reading the whole CRM (CLI `crm dump`, tests) ---------------------------------

    @_translate
    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """The whole CRM in the shape of SPEC.md's `crm dump --json`."""
        with self._read() as conn:
            return sql_dump.dump(conn)

    @_translate
    def get_party(self, ref: PartyRef) -> dict[str, Any] | None:
        """One record as `dump` shows it, or None."""
        t = TABLES[ref.kind]
        pid = party_id(ref)
        with self._read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == pid)).mappings().first()
            if row is None:
                return None
            q = sa.select(pe.c.address).where(pe.c.kind == ref.kind, pe.c.party_id == pid).order_by(pe.c.id)
            return sql_dump.party_dict(ref.kind, row, list(conn.execute(q).scalars()))

    @_translate
    def search(
        self, text: str, kinds: Sequence[PartyKind] = PARTY_KINDS, users: frozenset[str] | None = None, limit: int = 50
    ) -> list[RecordHit]:
        """Records whose name, company, domain or address contains `text` (gateway/crm/sql_search.py)."""
        for kind in kinds:
            if kind not in TABLES:
                raise Permanent(f"unknown record kind {kind!r}")
        with self._read() as conn:
            return sql_search.search(conn, text, kinds, users, limit)

    @_translate
    def visible_to(self, ref: PartyRef, users: frozenset[str]) -> bool:
        """Whether the record is one of `users`' or shared (no owner)."""
        with self._read() as conn:
            return sql_search.visible_to(conn, ref, users)

    @_translate
    def attachment_bytes(self, sha256: str) -> bytes | None:
        """The stored bytes of an attachment (or raw .eml) by sha256, None when absent."""
        with self._read() as conn:
            return conn.execute(sa.select(bl.c.data).where(bl.c.sha256 == sha256)).scalar()

    @_translate
    def raw_email(self, ref: EmailRef) -> bytes | None:
        """The stored .eml of an email."""
        with self._read() as conn:
            q = sa.select(bl.c.data).join(em, em.c.raw_sha256 == bl.c.sha256).where(em.c.id == int(ref.id))
            return conn.execute(q).scalar()

    def contact_sync(self) -> SqlContactSync:
        """The change feed and contact read/write of the contact sync (gateway/crm/sync.py)."""
        return SqlContactSync(self._engine)

    def close(self) -> None:
        self._engine.dispose()


@register_connector("sql")
def _from_config(crm_config: SqlConfig) -> SqlConnector:
    return SqlConnector(crm_config.url)
