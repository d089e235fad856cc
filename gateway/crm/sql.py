"""The embedded CRM (`crm.backend: sql`): accounts, contacts, leads and their mail in
SQLite or PostgreSQL, through SQLAlchemy 2.

Design notes:
- Lookups go through `party_emails.address_key` (`gateway.addresses.key`) with `=` and bound
  parameters only, so `%`, `_`, `\\`, quotes and non-ASCII addresses match exactly.
- `attach` writes the email row, its blobs and its links in one short transaction and uses
  `INSERT … ON CONFLICT DO NOTHING` then re-reads, so concurrent attaches of one mail end
  with one row (PostgreSQL waits for the other inserter; SQLite takes the write lock up front
  with `BEGIN IMMEDIATE`, so a reader never has to upgrade its lock and hit "locked").
  It costs a handful of statements whatever the mail: one probe reads what is stored already
  (the email, its links, which of the blobs, the parents), then one INSERT per table writes
  only what is missing (executemany for several rows).
- Bytes (raw .eml, attachments) are stored once per sha256 in `blobs`; a blob already stored
  is never sent again, so a 20 MB attachment seen twice travels to the database once.
- Hot statements are built once at import and run with bound parameters (SQLAlchemy then
  reuses their cache keys and compiled SQL); a read of one statement runs without BEGIN.
- Lookups start from an index on the value sought (`address_key`, `message_id`) and reach
  the party tables by primary key through outer joins: never "every party_emails row of
  kind X" (what SQLite picks for `kind = ? AND address_key = ?` without statistics).
- Notes (`add_note`) live in `notes`, unique per (key, record): gateway/crm/sql_notes.py.
- Errors leave as `Retryable` (locked, refused, timeouts, deadlocks) or `Permanent` (the data).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway import addresses
from gateway.crm import migrations, sql_dump, sql_notes
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
_BATCH_BYTES = 1 << 20  # blobs sent in one executemany: beyond this, one by one
_STREAM_BYTES = 4 << 20  # SQLite: a bigger blob is written in pieces (see _stream_blob)
_PIECE = 1 << 20
_COLUMNS_FROM_FIELDS = {
    "lead": {"first_name", "last_name", "company", "status"},
    "contact": {"first_name", "last_name"},
    "account": {"name", "domain"},
}

# cast: a declarative class's __table__ is typed FromClause; these are Tables
pe, em, ln, at, bl = (cast(sa.Table, m.__table__) for m in (PartyEmail, Email, EmailLink, EmailAttachment, Blob))

# -- prebuilt statements -------------------------------------------------------------------
# Built once (per dialect where the insert differs) and executed with bound parameters:
# SQLAlchemy memoizes a statement object's cache key and compiled form, so a hot call costs
# the execution only, not the building of the statement.


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
_FIND = _with_parties(_by_key)

_BY_DOMAIN = (
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
_THREAD = _with_parties(_linked).order_by(_linked.c.first_link)
_FIND_EMAIL = (
    sa.select(em.c.id, em.c.message_id, em.c.content_hash)
    .where(em.c.message_id == sa.bindparam("mid"))
    .order_by(em.c.id)
    .limit(1)
)
_FIND_VERSION = _FIND_EMAIL.where(em.c.content_hash == sa.bindparam("h"))
_EXISTS = {kind: sa.select(t.c.id).where(t.c.id == sa.bindparam("id")) for kind, t in TABLES.items()}
_INSERT_PARTY = {kind: sa.insert(t).returning(*t.c) for kind, t in TABLES.items()}
_EMAIL_ID = sa.select(em.c.id).where(em.c.message_id == sa.bindparam("mid"), em.c.content_hash == sa.bindparam("h"))
_SET_RAW = sa.update(em).where(em.c.id == sa.bindparam("email_id")).values(
    raw_sha256=sa.bindparam("raw_sha"), raw_size=sa.bindparam("raw_len")
)

_INT_NULL = sa.cast(sa.null(), sa.Integer)
_STR_NULL = sa.cast(sa.null(), sa.String)


@functools.cache
def _probe_stmt(kinds: tuple[str, ...], with_shas: bool) -> sa.CompoundSelect:
    """Everything `attach` must know before it writes, in one round trip: rows of
    (tag, n, s, x, y) —
    - "e": the email (:mid, :h) if stored: n its id, s its raw_sha256, x 1 when that blob is
      stored, y how many attachment rows it has;
    - "v": n the first email with Message-ID :mid (NULL: none), what a new version points at;
    - "l": a link of that email: n the party id, s its kind;
    - "b": s a sha256 of `:shas` already in `blobs`;
    - a party kind: n an id of `:ids_<kind>` that exists.
    """
    this = sa.and_(em.c.message_id == sa.bindparam("mid"), em.c.content_hash == sa.bindparam("h"))
    raw_stored = sa.select(bl.c.sha256).where(bl.c.sha256 == em.c.raw_sha256).exists()
    n_files = sa.select(sa.func.count(at.c.id)).where(at.c.email_id == em.c.id).scalar_subquery()
    parts: list[sa.Select] = [  # of five columns each, typed apart
        sa.select(
            sa.literal_column("'e'").label("tag"),
            em.c.id.label("n"),
            sa.cast(em.c.raw_sha256, sa.String).label("s"),
            sa.case((raw_stored, 1), else_=0).label("x"),
            n_files.label("y"),
        ).where(this),
        sa.select(sa.literal_column("'v'"), sa.func.min(em.c.id), _STR_NULL, _INT_NULL, _INT_NULL).where(
            em.c.message_id == sa.bindparam("mid")
        ),
        sa.select(sa.literal_column("'l'"), ln.c.party_id, sa.cast(ln.c.kind, sa.String), _INT_NULL, _INT_NULL)
        .join(em, em.c.id == ln.c.email_id)
        .where(this),
    ]
    if with_shas:
        parts.append(
            sa.select(sa.literal_column("'b'"), _INT_NULL, sa.cast(bl.c.sha256, sa.String), _INT_NULL, _INT_NULL).where(
                bl.c.sha256.in_(sa.bindparam("shas", expanding=True))
            )
        )
    for kind in kinds:
        t = TABLES[kind]
        parts.append(
            sa.select(sa.literal_column(f"'{kind}'"), t.c.id, _STR_NULL, _INT_NULL, _INT_NULL).where(
                t.c.id.in_(sa.bindparam(f"ids_{kind}", expanding=True))
            )
        )
    return sa.union_all(*parts)


def _stream_blob(conn: sa.Connection, sha: str, data: bytes, now: Any) -> None:
    """Store a big blob on SQLite without whole copies of it in memory: bound as a parameter,
    a 20 MB blob cost 40 MB more at the peak (the driver's copy and SQLite's row). A zeroblob
    of its size costs nothing as the row's last column (migration 0002); the bytes are then
    written into it in pieces through SQLite's incremental blob I/O, in the same transaction."""
    stmt = sqlite.insert(bl).values(sha256=sha, size=len(data), created_at=now,
                                    data=sa.func.zeroblob(len(data))).on_conflict_do_nothing(index_elements=["sha256"])
    result = conn.execute(stmt)
    if not result.rowcount:  # stored already, by another worker a moment ago
        return
    view = memoryview(data)
    with conn.connection.dbapi_connection.blobopen(bl.name, "data", result.lastrowid) as blob:  # type: ignore[union-attr]
        for start in range(0, len(view), _PIECE):
            blob.write(view[start:start + _PIECE])


class _Writes:
    """The `INSERT … ON CONFLICT DO NOTHING` statements of one dialect."""

    def __init__(self, insert: Callable[[sa.Table], Any]) -> None:
        self.address = insert(pe).on_conflict_do_nothing(index_elements=["kind", "party_id", "address_key"])
        self.blob = insert(bl).on_conflict_do_nothing(index_elements=["sha256"])
        self.email = (
            insert(em).on_conflict_do_nothing(index_elements=["message_id", "content_hash"]).returning(em.c.id)
        )
        self.file = insert(at).on_conflict_do_nothing(index_elements=["email_id", "position"])
        self.link = insert(ln).on_conflict_do_nothing(index_elements=["email_id", "kind", "party_id"])


_WRITES = {"postgresql": _Writes(postgresql.insert), "sqlite": _Writes(sqlite.insert)}


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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SqlConnector:
    """The embedded CRM. `SqlConnector("sqlite:///var/crm.db")`; the schema is upgraded on open."""

    name = "sql"

    @_translate
    def __init__(self, url: str, *, busy_timeout: float = 30) -> None:
        self.url = url
        self._engine = make_engine(url, busy_timeout)
        self._w = _WRITES[self._engine.dialect.name]
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
        rows = [row for row in self._query(_FIND, {"k": k}) if row.kind in wanted and row.id is not None]
        rows.sort(key=lambda row: (wanted[row.kind], row.id))
        return [_ref(row.kind, row) for row in rows]

    @_translate
    def find_by_domain(self, domain: str) -> list[PartyRef]:
        d = addresses.domain_of("x@" + domain.strip().lstrip("@"))
        if not d:
            return []
        return [_ref("account", row) for row in self._query(_BY_DOMAIN, {"d": d})]

    @_translate
    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        if content_hash is None:
            rows = self._query(_FIND_EMAIL, {"mid": message_id})
        else:
            rows = self._query(_FIND_VERSION, {"mid": message_id, "h": content_hash})
        return EmailRef(str(rows[0].id), rows[0].message_id, rows[0].content_hash) if rows else None

    @_translate
    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        ids = list(dict.fromkeys(m for m in message_ids if m))
        if not ids:
            return []
        found: dict[tuple[str, int], PartyRef] = {}
        if len(ids) <= _CHUNK:
            rows = self._query(_THREAD, {"mids": ids})
        else:
            with self._read() as conn:
                rows = [row for chunk in _chunks(ids) for row in conn.execute(_THREAD, {"mids": list(chunk)})]
        for row in rows:  # by chunk, then by first link: the order of the links themselves
            if row.id is not None:
                found.setdefault((row.kind, row.id), _ref(row.kind, row))
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
        values, extra = _party_values(kind, data)
        values.update(owner=_clean(data.owner), fields=extra, created_by_gateway=by_gateway, created_at=utcnow())
        with self._write() as conn:
            if kind != "account" and data.account is not None:
                values["account_id"] = self._existing_id(conn, data.account, want="account")
            row = conn.execute(_INSERT_PARTY[kind], values).one()
            self._add_addresses(conn, kind, row.id, data.emails)
        return _new_ref(kind, row)

    def _add_addresses(self, conn: sa.Connection, kind: str, pid: int, emails: Iterable[str]) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for address in emails:
            k = addresses.key(address)
            if k and _clean(k) not in rows:  # the first spelling of a key wins, as the constraint would have it
                address = _clean(addresses.normalize(address))
                rows[_clean(k)] = dict(kind=kind, party_id=pid, address=address, address_key=_clean(k))
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
        pid = _party_id(ref)
        if conn.execute(_EXISTS[ref.kind], {"id": pid}).first() is None:
            raise Permanent(f"no such record in the CRM: {ref.label()}")
        return pid

    @_translate
    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        """One transaction of a few statements: one probe reads what is stored already (the
        email, its links, the blobs, the parents), then only what is missing is written, each
        table with one (executemany) INSERT … ON CONFLICT DO NOTHING."""
        with self._write() as conn:
            return self._attach(conn, parents, mail)

    @_translate
    def attach_many(self, items: Sequence[tuple[Sequence[PartyRef], EmailRecord]]) -> list[EmailRef]:
        """`attach` for several mails in one transaction: all are stored, or none (a failure
        rolls the batch back, and the gateway attaches its mails one by one instead)."""
        with self._write() as conn:
            return [self._attach(conn, parents, mail) for parents, mail in items]

    def _attach(self, conn: sa.Connection, parents: Sequence[PartyRef], mail: EmailRecord) -> EmailRef:
        ids: dict[str, list[int]] = {}
        for ref in parents:
            try:
                pid = _party_id(ref)
            except Permanent:
                continue  # reported below, in the parents' order
            ids.setdefault(ref.kind, []).append(pid)
        mid = _clean(mail.message_id)
        # the blobs this mail may need: its .eml, and its attachments by their upstream hashes
        # (an attachment whose blob is stored already is neither hashed nor sent)
        eml_sha = (mail.raw_sha256 if mail.hashes_verified and mail.raw_sha256 else _sha256(mail.raw)) if mail.raw else None
        shas = {a.sha256 for a in mail.attachments if a.payload and a.sha256} | ({eml_sha} if eml_sha else set())
        params: dict[str, Any] = {"mid": mid, "h": mail.content_hash}
        if shas:
            params["shas"] = sorted(shas)
        params.update((f"ids_{kind}", pids) for kind, pids in ids.items())
        probe = _probe_stmt(tuple(sorted(ids)), bool(shas))
        email_id: int | None = None
        raw_sha: str | None = None
        raw_stored = False
        files = 0
        first: int | None = None
        linked: set[tuple[str, int]] = set()
        stored: set[str] = set()
        found: set[tuple[str, int]] = set()
        for tag, n, s, x, y in conn.execute(probe, params):
            if tag == "e":
                email_id, raw_sha, raw_stored, files = n, s, bool(x), y
            elif tag == "v":
                first = n
            elif tag == "l":
                linked.add((s, n))
            elif tag == "b":
                stored.add(s)
            else:
                found.add((tag, n))
        wanted: dict[tuple[str, int], None] = {}
        for ref in parents:
            pid = _party_id(ref)
            if (ref.kind, pid) not in found:
                raise Permanent(f"no such record in the CRM: {ref.label()}")
            wanted[(ref.kind, pid)] = None

        now = utcnow()
        blobs: dict[str, bytes] = {}  # to store: sha256 → bytes (references, never copies)
        update_raw = False
        if eml_sha and (email_id is None or raw_sha is None or not raw_stored):
            # a new email's .eml, or one stored before its raw bytes were (cannot hurt)
            update_raw = email_id is not None
            raw_sha = eml_sha
            if eml_sha not in stored:
                blobs[eml_sha] = mail.raw
        files_sha: list[str] = []
        for a in mail.attachments:
            sha = a.sha256
            if a.payload and not (sha and sha in stored):
                # keyed by the bytes themselves: a wrong hash from upstream must not alias a blob
                # (the gateway's own parser hashed them: `hashes_verified`)
                sha = sha if mail.hashes_verified and sha else _sha256(a.payload)
                if sha not in stored:
                    blobs.setdefault(sha, a.payload)
            files_sha.append(sha)
        # in sha256 order, so two mails sharing files never wait on each other in a cycle; small
        # ones in one executemany, big ones one at a time (a driver may buffer a whole batch)
        batch: list[dict[str, Any]] = []
        size = 0
        for sha, data in sorted(blobs.items()):
            if len(data) > _STREAM_BYTES and conn.dialect.name == "sqlite":
                _stream_blob(conn, sha, data, now)
                continue
            batch.append(dict(sha256=sha, size=len(data), data=data, created_at=now))
            size += len(data)
            if size > _BATCH_BYTES:
                conn.execute(self._w.blob, batch if len(batch) > 1 else batch[0])
                batch, size = [], 0
        if batch:
            conn.execute(self._w.blob, batch if len(batch) > 1 else batch[0])
        if email_id is None:
            values = _email_values(mail, now) | dict(version_of=first, raw_sha256=raw_sha, raw_size=len(mail.raw))
            email_id = conn.execute(self._w.email, values).scalar()
            if email_id is None:  # another worker stored it a moment ago: adopt theirs
                email_id = conn.execute(_EMAIL_ID, {"mid": mid, "h": mail.content_hash}).scalar()
                files, linked = -1, set()  # what it has stored is unknown: let the conflicts decide
            if email_id is None:
                raise Retryable(f"email {mail.message_id} vanished while attaching")
        elif update_raw:
            conn.execute(_SET_RAW, {"email_id": email_id, "raw_sha": raw_sha, "raw_len": len(mail.raw)})
        if mail.attachments and files != len(mail.attachments):
            rows = [
                dict(
                    email_id=email_id,
                    position=pos,
                    filename=_clean(a.filename),
                    content_type=_clean(a.content_type) or "application/octet-stream",
                    size=a.size or len(a.payload),
                    sha256=sha,
                )
                for pos, (a, sha) in enumerate(zip(mail.attachments, files_sha, strict=True))
            ]
            conn.execute(self._w.file, rows if len(rows) > 1 else rows[0])
        links = [dict(email_id=email_id, kind=k, party_id=p, created_at=now) for k, p in wanted if (k, p) not in linked]
        if links:
            conn.execute(self._w.link, links if len(links) > 1 else links[0])
        return EmailRef(str(email_id), mail.message_id, mail.content_hash)

    # -- notes -------------------------------------------------------------------------

    @_translate
    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """One transaction: every parent checked, then one INSERT … ON CONFLICT DO NOTHING on
        the `notes` table's (key, record) constraint (see gateway/crm/sql_notes.py)."""
        if not note.key or len(note.key) > 255:
            raise Permanent(f"a note key must be 1 to 255 characters, not {len(note.key)}")
        values = dict(key=note.key, title=_clean(note.title), text=_clean(note.text), owner=_clean(note.owner)[:320],
                      message_id=_clean(note.message_id), created_at=utcnow())
        with self._write() as conn:
            targets = [(ref.kind, self._existing_id(conn, ref)) for ref in parents]
            return NoteRef(note.key, tuple(sql_notes.write(conn, targets, values)))

    @_translate
    def notes(self, ref: PartyRef) -> list[dict[str, Any]]:
        """The notes on one record, oldest first (tests, and a person's `crm` look-ups)."""
        with self._read() as conn:
            return sql_notes.read(conn, ref.kind, _party_id(ref))

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
                sql_notes.delete(conn, ref.kind, pid)
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
    """A record from a row with id, created_at and the `_name_columns` a and b."""
    name = " ".join(p for p in (row.a, row.b) if p)
    return PartyRef(kind, str(row.id), name, row.created_at)  # type: ignore[arg-type]


def _new_ref(kind: str, row: Any) -> PartyRef:
    """A record from the full row of its table (what `create` inserted)."""
    name = row.name if kind == "account" else " ".join(p for p in (row.first_name, row.last_name) if p)
    return PartyRef(kind, str(row.id), name, row.created_at)  # type: ignore[arg-type]


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


def _email_values(mail: EmailRecord, now: datetime) -> dict[str, Any]:
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
        created_at=now,
    )


def _participant_keys(row: Any) -> set[str]:
    return {addresses.key(a) for a in [row.from_address, *(row.to_addresses or []), *(row.cc_addresses or [])]}


@register_connector("sql")
def _from_config(crm_config: Any) -> SqlConnector:
    return SqlConnector(crm_config.url)
