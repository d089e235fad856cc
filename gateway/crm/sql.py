"""The embedded CRM (`crm.backend: sql`): accounts, contacts, leads and their mail in
SQLite or PostgreSQL, through SQLAlchemy 2.

Design notes:
- Lookups go through `party_emails.address_key` (`gateway.addresses.key`) with `=` and bound
  parameters only, so `%`, `_`, `\\`, quotes and non-ASCII addresses match exactly.
- `attach` writes the email row, its blobs and its links in one short transaction and uses
  `INSERT … ON CONFLICT DO NOTHING` then re-reads, so concurrent attaches of one mail end
  with one row (PostgreSQL waits for the other inserter; SQLite takes the write lock up front
  with `BEGIN IMMEDIATE`, so a reader never has to upgrade its lock and hit "locked").
- Bytes (raw .eml, attachments) are stored once per sha256 in `blobs`; a blob already stored
  is never sent again, so a 20 MB attachment seen twice travels to the database once.
- Errors leave as `Retryable` (locked, refused, timeouts, deadlocks) or `Permanent` (the data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway import addresses
from gateway.crm import migrations, sql_dump
from gateway.crm.base import (
    PARTY_KINDS,
    EmailRecord,
    EmailRef,
    ForgetReport,
    PartyData,
    PartyKind,
    PartyRef,
    register_connector,
)
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_engine import make_engine
from gateway.crm.sql_engine import translate_errors as _translate
from gateway.crm.sql_models import Blob, Email, EmailAttachment, EmailLink, PartyEmail, utcnow
from gateway.errors import Permanent, Retryable

__all__ = ["SqlConnector", "make_engine"]

T = TypeVar("T")

_CHUNK = 500  # bound parameters per IN (…): SQLite allows 32766, keep statements small anyway
_COLUMNS_FROM_FIELDS = {
    "lead": {"first_name", "last_name", "company", "status"},
    "contact": {"first_name", "last_name"},
    "account": {"name", "domain"},
}

pe, em, ln, at, bl = (m.__table__ for m in (PartyEmail, Email, EmailLink, EmailAttachment, Blob))


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; strip it on every backend so both store the same
    return text.replace("\x00", "") if "\x00" in text else text


def _party_id(ref: PartyRef) -> int:
    if ref.kind not in PARTY_KINDS:
        raise Permanent(f"unknown record kind {ref.kind!r}")
    try:
        return int(ref.id)
    except ValueError:
        raise Permanent(f"not an id of the embedded CRM: {ref.label()}") from None


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class SqlConnector:
    """The embedded CRM. `SqlConnector("sqlite:///var/crm.db")`; the schema is upgraded on open."""

    name = "sql"

    @_translate
    def __init__(self, url: str, *, busy_timeout: float = 30) -> None:
        self.url = url
        self._engine = make_engine(url, busy_timeout)
        self._insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        migrations.upgrade(self._engine)

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(crm_write=True)
            with conn.begin():
                yield conn

    def _insert_ignore(self, conn: sa.Connection, table: sa.Table, values: dict[str, Any], keys: list[str]) -> None:
        conn.execute(self._insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))

    # -- lookups -----------------------------------------------------------------------

    @_translate
    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        k = addresses.key(address)
        if not k:
            return []
        found: list[PartyRef] = []
        with self._read() as conn:
            for kind in dict.fromkeys(kinds):  # keep the order: it is the precedence
                if kind not in TABLES:
                    raise Permanent(f"unknown record kind {kind!r}")
                t = TABLES[kind]
                q = (
                    sa.select(t)
                    .join(pe, sa.and_(pe.c.kind == kind, pe.c.party_id == t.c.id))
                    .where(pe.c.address_key == k)
                    .order_by(t.c.id)
                )
                found.extend(_ref(kind, row) for row in conn.execute(q).mappings())
        return found

    @_translate
    def find_by_domain(self, domain: str) -> list[PartyRef]:
        d = addresses.domain_of("x@" + domain.strip().lstrip("@"))
        if not d:
            return []
        t = TABLES["account"]
        with self._read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.domain == d).order_by(t.c.id)).mappings()
            return [_ref("account", row) for row in rows]

    @_translate
    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        q = sa.select(em.c.id, em.c.message_id, em.c.content_hash).where(em.c.message_id == message_id)
        if content_hash is not None:
            q = q.where(em.c.content_hash == content_hash)
        with self._read() as conn:
            row = conn.execute(q.order_by(em.c.id).limit(1)).first()
        return EmailRef(str(row.id), row.message_id, row.content_hash) if row else None

    @_translate
    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        ids = list(dict.fromkeys(m for m in message_ids if m))
        pairs: dict[tuple[str, int], None] = {}
        with self._read() as conn:
            for chunk in _chunks(ids):
                q = (
                    sa.select(ln.c.kind, ln.c.party_id)
                    .join(em, em.c.id == ln.c.email_id)
                    .where(em.c.message_id.in_(chunk))
                    .order_by(ln.c.id)
                )
                pairs.update((tuple(row), None) for row in conn.execute(q))  # type: ignore[misc]
            refs = [self._load_ref(conn, kind, pid) for kind, pid in pairs]
        return [r for r in refs if r is not None]

    def _load_ref(self, conn: sa.Connection, kind: str, pid: int) -> PartyRef | None:
        t = TABLES[kind]
        row = conn.execute(sa.select(t).where(t.c.id == pid)).mappings().first()
        return _ref(kind, row) if row else None

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
        values, extra = _party_values(kind, data)
        values.update(owner=_clean(data.owner), fields=extra, created_by_gateway=by_gateway, created_at=utcnow())
        with self._write() as conn:
            if kind != "account" and data.account is not None:
                values["account_id"] = self._existing_id(conn, data.account, want="account")
            t = TABLES[kind]
            row = conn.execute(sa.insert(t).values(**values).returning(*t.c)).mappings().one()
            self._add_addresses(conn, kind, row["id"], data.emails)
        return _ref(kind, row)

    def _add_addresses(self, conn: sa.Connection, kind: str, pid: int, emails: Iterable[str]) -> None:
        for address in emails:
            k = addresses.key(address)
            if k:
                values = dict(kind=kind, party_id=pid, address=_clean(addresses.normalize(address)), address_key=_clean(k))
                self._insert_ignore(conn, pe, values, ["kind", "party_id", "address_key"])

    @_translate
    def add_email_address(self, ref: PartyRef, address: str) -> None:
        """Give an existing record one more address (idempotent)."""
        with self._write() as conn:
            self._add_addresses(conn, ref.kind, self._existing_id(conn, ref), [address])

    def _existing_id(self, conn: sa.Connection, ref: PartyRef, want: str | None = None) -> int:
        if want and ref.kind != want:
            raise Permanent(f"{ref.label()} is not an {want}")
        pid = _party_id(ref)
        t = TABLES[ref.kind]
        if conn.execute(sa.select(t.c.id).where(t.c.id == pid)).first() is None:
            raise Permanent(f"no such record in the CRM: {ref.label()}")
        return pid

    @_translate
    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord) -> EmailRef:
        with self._write() as conn:
            pids = [(ref.kind, self._existing_id(conn, ref)) for ref in parents]
            email_id = self._store_email(conn, mail)
            self._store_attachments(conn, email_id, mail)
            for kind, pid in dict.fromkeys(pids):
                values = dict(email_id=email_id, kind=kind, party_id=pid, created_at=utcnow())
                self._insert_ignore(conn, ln, values, ["email_id", "kind", "party_id"])
        return EmailRef(str(email_id), mail.message_id, mail.content_hash)

    def _store_email(self, conn: sa.Connection, mail: EmailRecord) -> int:
        mid = _clean(mail.message_id)

        def lookup() -> int | None:
            q = sa.select(em.c.id).where(em.c.message_id == mid, em.c.content_hash == mail.content_hash)
            return conn.execute(q).scalar()

        existing = lookup()
        if existing is not None:
            if mail.raw:  # complete an email stored before its raw bytes were (cannot hurt)
                self._store_raw_if_missing(conn, existing, mail.raw)
            return existing
        first = conn.execute(sa.select(sa.func.min(em.c.id)).where(em.c.message_id == mid)).scalar()
        raw_sha = self._store_blob(conn, mail.raw) if mail.raw else None
        values = _email_values(mail) | dict(version_of=first, raw_sha256=raw_sha, raw_size=len(mail.raw))
        stmt = (
            self._insert(em)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["message_id", "content_hash"])
            .returning(em.c.id)
        )
        new_id = conn.execute(stmt).scalar()
        if new_id is None:  # another worker stored it a moment ago: adopt theirs
            new_id = lookup()
        if new_id is None:
            raise Retryable(f"email {mail.message_id} vanished while attaching")
        return new_id

    def _store_raw_if_missing(self, conn: sa.Connection, email_id: int, raw: bytes) -> None:
        sha = conn.execute(sa.select(em.c.raw_sha256).where(em.c.id == email_id)).scalar()
        if sha is None or not self._blob_exists(conn, sha):
            sha = self._store_blob(conn, raw)
            conn.execute(sa.update(em).where(em.c.id == email_id).values(raw_sha256=sha, raw_size=len(raw)))

    def _store_attachments(self, conn: sa.Connection, email_id: int, mail: EmailRecord) -> None:
        stored = {
            row.position: row.sha256
            for row in conn.execute(sa.select(at.c.position, at.c.sha256).where(at.c.email_id == email_id))
        }
        shas = {pos: a.sha256 for pos, a in enumerate(mail.attachments)}
        # blobs in sha256 order, so two mails sharing files never wait on each other in a cycle
        for pos, a in sorted(enumerate(mail.attachments), key=lambda pa: pa[1].sha256):
            if a.payload and not (a.sha256 and self._blob_exists(conn, a.sha256)):
                # keyed by the bytes themselves: a wrong hash from upstream must not alias a blob
                shas[pos] = self._store_blob(conn, a.payload)
        for pos, a in enumerate(mail.attachments):
            sha = shas[pos]
            if pos not in stored:
                values = dict(
                    email_id=email_id,
                    position=pos,
                    filename=_clean(a.filename),
                    content_type=_clean(a.content_type) or "application/octet-stream",
                    size=a.size or len(a.payload),
                    sha256=sha,
                )
                self._insert_ignore(conn, at, values, ["email_id", "position"])

    def _blob_exists(self, conn: sa.Connection, sha: str) -> bool:
        return conn.execute(sa.select(bl.c.sha256).where(bl.c.sha256 == sha)).first() is not None

    def _store_blob(self, conn: sa.Connection, data: bytes, sha: str | None = None) -> str:
        """Store bytes once per sha256; bytes already there are not sent again."""
        sha = sha or hashlib.sha256(data).hexdigest()
        if not self._blob_exists(conn, sha):
            values = dict(sha256=sha, size=len(data), data=data, created_at=utcnow())
            self._insert_ignore(conn, bl, values, ["sha256"])
        return sha

    # -- forget ------------------------------------------------------------------------

    @_translate
    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        k = addresses.key(address)
        refs = self.find(address, PARTY_KINDS) if k else []
        doomed = [r for r in refs if made_by_gateway(r)]
        kept = [r for r in refs if r not in doomed]
        with self._write() as conn:
            touched: set[int] = set()
            for ref in doomed:
                pid = _party_id(ref)
                links = sa.select(ln.c.email_id).where(ln.c.kind == ref.kind, ln.c.party_id == pid)
                touched.update(conn.execute(links).scalars())
                conn.execute(sa.delete(ln).where(ln.c.kind == ref.kind, ln.c.party_id == pid))
                conn.execute(sa.delete(pe).where(pe.c.kind == ref.kind, pe.c.party_id == pid))
                conn.execute(sa.delete(TABLES[ref.kind]).where(TABLES[ref.kind].c.id == pid))
            for ref in kept:  # a record a person made stays; it loses this address's mail
                pid = _party_id(ref)
                q = (
                    sa.select(em.c.id, em.c.from_address, em.c.to_addresses, em.c.cc_addresses)
                    .join(ln, ln.c.email_id == em.c.id)
                    .where(ln.c.kind == ref.kind, ln.c.party_id == pid)
                )
                mine = [row.id for row in conn.execute(q) if k in _participant_keys(row)]
                for chunk in _chunks(mine):
                    conn.execute(
                        sa.delete(ln).where(ln.c.kind == ref.kind, ln.c.party_id == pid, ln.c.email_id.in_(chunk))
                    )
                touched.update(mine)
            removed = self._delete_orphans(conn, sorted(touched))
        return ForgetReport(parties=tuple(doomed), emails_removed=removed, emails_unlinked=len(touched) - removed)

    def _delete_orphans(self, conn: sa.Connection, email_ids: list[int]) -> int:
        """Delete the emails among these that no record links to any more, and their blobs."""
        removed = 0
        for chunk in _chunks(email_ids):
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

    @_translate
    def made_by_gateway(self, ref: PartyRef) -> bool:
        """Whether the gateway created this record (the default `forget` callback)."""
        t = TABLES[ref.kind]
        with self._read() as conn:
            return bool(conn.execute(sa.select(t.c.created_by_gateway).where(t.c.id == _party_id(ref))).scalar())

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
        pid = _party_id(ref)
        with self._read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == pid)).mappings().first()
            if row is None:
                return None
            q = sa.select(pe.c.address).where(pe.c.kind == ref.kind, pe.c.party_id == pid).order_by(pe.c.id)
            return sql_dump.party_dict(ref.kind, row, list(conn.execute(q).scalars()))

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

    def close(self) -> None:
        self._engine.dispose()


def _ref(kind: str, row: Any) -> PartyRef:
    if kind == "account":
        name = row["name"]
    else:
        name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
    return PartyRef(kind, str(row["id"]), name, row["created_at"])  # type: ignore[arg-type]


def _party_values(kind: str, data: PartyData) -> tuple[dict[str, Any], dict[str, str]]:
    """Columns for a new record, and the rule's `fields` that have no column of their own."""
    if kind == "account":
        domain = data.domain or (addresses.domain_of(data.emails[0]) if data.emails else "")
        domain = addresses.domain_of("x@" + domain.lstrip("@")) if domain else ""
        values: dict[str, Any] = {"name": data.name or domain, "domain": domain}
    else:
        first, last = data.first_name, data.last_name
        if not (first or last) and data.name:
            first, _, last = data.name.strip().rpartition(" ")
            first, last = (first, last) if first else ("", last)
        values = {"first_name": first, "last_name": last}
        if kind == "lead":
            values["company"] = data.company
    extra: dict[str, str] = {}
    for name, value in data.fields.items():
        if name in _COLUMNS_FROM_FIELDS[kind]:
            values[name] = value
        else:
            extra[name] = _clean(str(value))
    # names come from display names in mail: cut rather than have the CRM refuse the record
    return {k: _clean(v)[:255] if isinstance(v, str) else v for k, v in values.items()}, extra


def _email_values(mail: EmailRecord) -> dict[str, Any]:
    return dict(
        message_id=_clean(mail.message_id),
        content_hash=mail.content_hash,
        subject=_clean(mail.subject),
        from_address=_clean(mail.from_address),
        from_name=_clean(mail.from_name),
        to_addresses=[_clean(a) for a in mail.to],
        cc_addresses=[_clean(a) for a in mail.cc],
        in_reply_to=[_clean(a) for a in mail.in_reply_to],
        references=[_clean(a) for a in mail.references],
        date=mail.date,
        date_offset_minutes=mail.date_offset_minutes,
        direction=mail.direction,
        text=_clean(mail.text),
        html=_clean(mail.html),
        owner=_clean(mail.owner),
        created_at=utcnow(),
    )


def _participant_keys(row: Any) -> set[str]:
    return {addresses.key(a) for a in [row.from_address, *(row.to_addresses or []), *(row.cc_addresses or [])]}


@register_connector("sql")
def _from_config(crm_config: Any) -> SqlConnector:
    return SqlConnector(crm_config.url)
