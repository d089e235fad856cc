"""The contact sync's truth in the ledger: links, the write journal, conflicts and cursors.

A link ties a card (address book, href) to a CRM record and keeps the fields both had at the
last sync: the base of the next three-way merge. The journal records an intent before a write
a replay could repeat, and its end after; the sync redoes open intents first. Every method is
one short transaction. The tables: gateway/ledger/schema.py.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from gateway.errors import Conflict as Refused
from gateway.errors import NotFound
from gateway.ledger.database import insert_ignore
from gateway.ledger.rows import now
from gateway.ledger.schema import pim_conflicts, pim_cursors, pim_journal, pim_links

# The lease of an address book, beside the mailboxes' (gateway/ledger/leases.py): a source
# name no configured source can have (no ':' in source names), the book's name as account.
BOOK_LEASE_SOURCE = "pimsync:addressbook"


class LinkState(StrEnum):
    LINKED = "linked"
    UNLINKED = "unlinked"  # the card was deleted; the CRM record stays and is not sent back


@dataclass(frozen=True)
class Link:
    book: str
    href: str
    kind: str
    crm_id: str
    uid: str = ""
    state: LinkState = LinkState.LINKED
    etag: str = ""
    snapshot: dict[str, Any] = field(default_factory=dict)
    born: str = ""  # the record's creation stamp (SyncContact.born): an id reused is another record
    seen_etag: str = ""  # the card version the sync saw last (it may not have merged it yet)
    seen_at: float = 0.0  # when the sync first saw the card at `seen_etag` (a REV is never newer)

    def same_record(self, born: str) -> bool:
        return not self.born or not born or self.born == born


class ConflictState(StrEnum):
    OPEN = "open"  # listed; the newer change won
    CHOSEN = "chosen"  # a person kept the other value: the next round of its book applies it
    APPLIED = "applied"  # done: the kept value went to the CRM, and from there to the card
    SEEN = "seen"  # a person kept the winner: nothing to do
    SUPERSEDED = "superseded"  # the field changed again before the choice was applied: the newer value stands


OPEN_STATES = (ConflictState.OPEN, ConflictState.CHOSEN)


@dataclass(frozen=True)
class Conflict:
    id: int
    book: str
    kind: str
    crm_id: str
    href: str
    field: str
    crm_value: Any
    card_value: Any
    winner: str  # crm | card
    at: datetime
    state: ConflictState = ConflictState.OPEN
    kept: str | None = None  # crm | card: what a person chose
    resolved_by: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Intent:
    book: str
    action: str  # create_crm | put_card
    key: str


def _link(row: Any) -> Link:
    return Link(
        row.book,
        row.href,
        row.kind,
        row.crm_id,
        row.uid,
        LinkState(row.state),
        row.etag,
        json.loads(row.snapshot),
        row.crm_born,
        row.card_seen_etag,
        row.card_seen_at,
    )


class PimLedger:
    """The sync's tables on the ledger's engines (`Ledger.reader`, `Ledger.engine`)."""

    def __init__(self, reader: sa.Engine, writer: sa.Engine) -> None:
        self._reader = reader
        self._writer = writer

    # -- cursors -----------------------------------------------------------------------

    def cursor(self, book: str) -> tuple[int, str]:
        """(CRM feed version, sync-token) seen last; (0, "") for a new address book."""
        with self._reader.begin() as c:
            row = c.execute(sa.select(pim_cursors).where(pim_cursors.c.book == book)).first()
        return (int(row.crm_version), row.sync_token) if row else (0, "")

    def save_cursor(self, book: str, crm_version: int, sync_token: str) -> None:
        with self._writer.begin() as c:
            values = dict(crm_version=crm_version, sync_token=sync_token, updated_at=now())
            if c.execute(sa.update(pim_cursors).where(pim_cursors.c.book == book).values(**values)).rowcount == 0:
                c.execute(sa.insert(pim_cursors).values(book=book, **values))

    # -- links -------------------------------------------------------------------------

    def by_href(self, book: str, href: str) -> Link | None:
        with self._reader.begin() as c:
            row = c.execute(sa.select(pim_links).where(pim_links.c.book == book, pim_links.c.href == href)).first()
        return _link(row) if row else None

    def by_record(self, book: str, kind: str, crm_id: str) -> Link | None:
        q = sa.select(pim_links).where(pim_links.c.book == book, pim_links.c.kind == kind, pim_links.c.crm_id == crm_id)
        with self._reader.begin() as c:
            row = c.execute(q).first()
        return _link(row) if row else None

    def links(self, book: str | None = None) -> list[Link]:
        q = sa.select(pim_links).order_by(pim_links.c.book, pim_links.c.href)
        if book is not None:
            q = q.where(pim_links.c.book == book)
        with self._reader.begin() as c:
            return [_link(r) for r in c.execute(q)]

    def save_link(self, link: Link) -> None:
        """Insert or replace the link of (book, href); one link per record and book."""
        values = dict(
            uid=link.uid,
            kind=link.kind,
            crm_id=link.crm_id,
            state=link.state.value,
            etag=link.etag,
            snapshot=json.dumps(link.snapshot, sort_keys=True),
            crm_born=link.born,
            card_seen_etag=link.seen_etag,
            card_seen_at=link.seen_at,
            updated_at=now(),
        )
        with self._writer.begin() as c:
            c.execute(
                sa.delete(pim_links).where(
                    pim_links.c.book == link.book,
                    pim_links.c.kind == link.kind,
                    pim_links.c.crm_id == link.crm_id,
                    pim_links.c.href != link.href,
                )
            )
            where = (pim_links.c.book == link.book) & (pim_links.c.href == link.href)
            if c.execute(sa.update(pim_links).where(where).values(**values)).rowcount == 0:
                c.execute(sa.insert(pim_links).values(book=link.book, href=link.href, **values))

    def drop_link(self, book: str, href: str) -> None:
        with self._writer.begin() as c:
            c.execute(sa.delete(pim_links).where(pim_links.c.book == book, pim_links.c.href == href))

    # -- journal -----------------------------------------------------------------------

    def intend(self, book: str, action: str, key: str) -> None:
        """Record the intent (again: a redo keeps the first row, reopened)."""
        with self._writer.begin() as c:
            c.execute(insert_ignore(c, pim_journal), dict(book=book, action=action, key=key, state="intent", intent_at=now()))
            c.execute(
                sa.update(pim_journal)
                .where(pim_journal.c.book == book, pim_journal.c.action == action, pim_journal.c.key == key)
                .values(state="intent", done_at=None)
            )

    def done(self, book: str, action: str, key: str) -> None:
        with self._writer.begin() as c:
            c.execute(
                sa.update(pim_journal)
                .where(pim_journal.c.book == book, pim_journal.c.action == action, pim_journal.c.key == key)
                .values(state="done", done_at=now())
            )

    def open_intents(self, book: str) -> list[Intent]:
        q = sa.select(pim_journal).where(pim_journal.c.book == book, pim_journal.c.state == "intent")
        with self._reader.begin() as c:
            return [Intent(r.book, r.action, r.key) for r in c.execute(q.order_by(pim_journal.c.intent_at))]

    # -- conflicts ---------------------------------------------------------------------

    def add_conflict(self, link: Link, field_name: str, crm_value: Any, card_value: Any, winner: str) -> None:
        """List a conflict; the same one again (a round redone after a crash) is listed once."""
        values = dict(crm_value=json.dumps(crm_value), card_value=json.dumps(card_value))
        same = sa.select(pim_conflicts.c.id).where(
            pim_conflicts.c.book == link.book,
            pim_conflicts.c.crm_id == link.crm_id,
            pim_conflicts.c.field == field_name,
            pim_conflicts.c.crm_value == values["crm_value"],
            pim_conflicts.c.card_value == values["card_value"],
        )
        with self._writer.begin() as c:
            if c.execute(same).first() is not None:
                return
            c.execute(
                sa.insert(pim_conflicts).values(
                    book=link.book,
                    kind=link.kind,
                    crm_id=link.crm_id,
                    href=link.href,
                    field=field_name,
                    crm_value=json.dumps(crm_value),
                    card_value=json.dumps(card_value),
                    winner=winner,
                    at=now(),
                )
            )

    def conflicts(
        self,
        book: str | None = None,
        *,
        books: Collection[str] | None = None,
        open_only: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Conflict]:
        """Oldest first; `books` (a person's address books) and `open_only` narrow the list."""
        q = self._where(sa.select(pim_conflicts), book, books, open_only).order_by(pim_conflicts.c.id)
        if limit is not None:
            q = q.limit(limit).offset(offset)
        with self._reader.begin() as c:
            return [_conflict(r) for r in c.execute(q)]

    def count_conflicts(self, book: str | None = None, *, books: Collection[str] | None = None, open_only: bool = False) -> int:
        q = self._where(sa.select(sa.func.count()).select_from(pim_conflicts), book, books, open_only)
        with self._reader.begin() as c:
            return int(c.execute(q).scalar() or 0)

    def open_conflicts_by_book(self) -> dict[str, int]:
        """Conflicts no person has settled yet, per address book (status, metrics)."""
        q = (
            sa.select(pim_conflicts.c.book, sa.func.count())
            .where(pim_conflicts.c.state.in_([s.value for s in OPEN_STATES]))
            .group_by(pim_conflicts.c.book)
        )
        with self._reader.begin() as c:
            return {r[0]: int(r[1]) for r in c.execute(q)}

    @staticmethod
    def _where(q: Any, book: str | None, books: Collection[str] | None, open_only: bool) -> Any:
        if book is not None:
            q = q.where(pim_conflicts.c.book == book)
        if books is not None:
            q = q.where(pim_conflicts.c.book.in_(sorted(books)))
        if open_only:
            q = q.where(pim_conflicts.c.state.in_([s.value for s in OPEN_STATES]))
        return q

    def conflict(self, conflict_id: int) -> Conflict | None:
        with self._reader.begin() as c:
            row = c.execute(sa.select(pim_conflicts).where(pim_conflicts.c.id == conflict_id)).first()
        return _conflict(row) if row else None

    def choose(self, conflict_id: int, kept: str, by: str) -> Conflict:
        """A person keeps one side's value (`crm` or `card`): the winner kept is only seen; the
        other one is chosen, for the next round of its book to apply. Settled ones are refused."""
        found = self.conflict(conflict_id)
        if found is None:
            raise NotFound(f"no sync conflict {conflict_id}")
        if found.state not in OPEN_STATES:
            raise Refused(f"sync conflict {conflict_id} is already settled ({found.state})")
        state = ConflictState.SEEN if kept == found.winner else ConflictState.CHOSEN
        with self._writer.begin() as c:
            c.execute(
                sa.update(pim_conflicts)
                .where(pim_conflicts.c.id == conflict_id, pim_conflicts.c.state.in_([s.value for s in OPEN_STATES]))
                .values(state=state.value, kept=kept, resolved_by=by, resolved_at=now())
            )
        return self.conflict(conflict_id) or found

    def chosen(self, book: str) -> list[Conflict]:
        """The choices of this book that wait for its next round."""
        q = sa.select(pim_conflicts).where(pim_conflicts.c.book == book, pim_conflicts.c.state == ConflictState.CHOSEN.value)
        with self._reader.begin() as c:
            return [_conflict(r) for r in c.execute(q.order_by(pim_conflicts.c.id))]

    def chosen_books(self, books: Collection[str]) -> set[str]:
        """Which of these books have choices waiting (one query, asked every few seconds)."""
        q = (
            sa.select(pim_conflicts.c.book)
            .where(pim_conflicts.c.state == ConflictState.CHOSEN.value, pim_conflicts.c.book.in_(sorted(books)))
            .distinct()
        )
        with self._reader.begin() as c:
            return {r[0] for r in c.execute(q)}

    def settle(self, conflict_id: int, state: ConflictState) -> None:
        with self._writer.begin() as c:
            c.execute(sa.update(pim_conflicts).where(pim_conflicts.c.id == conflict_id).values(state=state.value))


def _conflict(r: Any) -> Conflict:
    return Conflict(
        r.id,
        r.book,
        r.kind,
        r.crm_id,
        r.href,
        r.field,
        json.loads(r.crm_value),
        json.loads(r.card_value),
        r.winner,
        r.at,
        ConflictState(r.state),
        r.kept,
        r.resolved_by,
        r.resolved_at,
    )
