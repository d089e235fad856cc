"""Attaching a mail to records in the embedded CRM: one probe reads what is stored already
(the email, its links, which of the blobs, the parents), then one INSERT … ON CONFLICT DO
NOTHING per table writes only what is missing (executemany for several rows), so concurrent
attaches of one mail end with one row.

Bytes (raw .eml, attachments) are stored once per sha256 in `blobs`; a blob already stored is
never sent again, so a 20 MB attachment seen twice travels to the database once.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from gateway.crm.base import EmailRecord, EmailRef, PartyRef
from gateway.crm.sql_dump import TABLES
from gateway.crm.sql_models import utcnow
from gateway.crm.sql_rows import at, bl, clean, em, email_values, ln, party_id
from gateway.crm.sql_statements import Writes
from gateway.errors import Permanent, Retryable

__all__ = ["attach"]


_BATCH_BYTES = 1 << 20  # blobs sent in one executemany: beyond this, one by one
_STREAM_BYTES = 4 << 20  # SQLite: a bigger blob is written in pieces (see _stream_blob)
_PIECE = 1 << 20


_EMAIL_ID = sa.select(em.c.id).where(em.c.message_id == sa.bindparam("mid"), em.c.content_hash == sa.bindparam("h"))
_SET_RAW = (
    sa.update(em)
    .where(em.c.id == sa.bindparam("email_id"))
    .values(raw_sha256=sa.bindparam("raw_sha"), raw_size=sa.bindparam("raw_len"))
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
    stmt = (
        sqlite.insert(bl)
        .values(sha256=sha, size=len(data), created_at=now, data=sa.func.zeroblob(len(data)))
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    result = conn.execute(stmt)
    if not result.rowcount:  # stored already, by another worker a moment ago
        return
    view = memoryview(data)
    with conn.connection.dbapi_connection.blobopen(bl.name, "data", result.lastrowid) as blob:  # type: ignore[union-attr]
        for start in range(0, len(view), _PIECE):
            blob.write(view[start : start + _PIECE])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attach(conn: sa.Connection, w: Writes, parents: Sequence[PartyRef], mail: EmailRecord) -> EmailRef:
    """Store `mail` (once) linked to each of `parents`, inside the caller's transaction."""
    ids: dict[str, list[int]] = {}
    for ref in parents:
        try:
            pid = party_id(ref)
        except Permanent:
            continue  # reported below, in the parents' order
        ids.setdefault(ref.kind, []).append(pid)
    mid = clean(mail.message_id)
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
        pid = party_id(ref)
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
            conn.execute(w.blob, batch if len(batch) > 1 else batch[0])
            batch, size = [], 0
    if batch:
        conn.execute(w.blob, batch if len(batch) > 1 else batch[0])
    if email_id is None:
        values = email_values(mail, now) | dict(version_of=first, raw_sha256=raw_sha, raw_size=len(mail.raw))
        email_id = conn.execute(w.email, values).scalar()
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
                filename=clean(a.filename),
                content_type=clean(a.content_type) or "application/octet-stream",
                size=a.size or len(a.payload),
                sha256=sha,
            )
            for pos, (a, sha) in enumerate(zip(mail.attachments, files_sha, strict=True))
        ]
        conn.execute(w.file, rows if len(rows) > 1 else rows[0])
    links = [dict(email_id=email_id, kind=k, party_id=p, created_at=now) for k, p in wanted if (k, p) not in linked]
    if links:
        conn.execute(w.link, links if len(links) > 1 else links[0])
    return EmailRef(str(email_id), mail.message_id, mail.content_hash)
