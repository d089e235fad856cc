"""Messages picked by what a person filters on (the API's `GET /api/v1/messages`): state,
where a copy lies, sender, when it was seen, words of the subject, and which mailboxes the
asker may see. One query with LIMIT/OFFSET, so paging is cheap however big the ledger grows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.engine import Engine

from gateway.ledger.rows import MessageRow
from gateway.ledger.schema import locations, messages
from gateway.ledger.states import MessageState


@dataclass(frozen=True)
class MessageFilter:
    states: tuple[MessageState, ...] = ()
    source: str | None = None
    folder: str | None = None
    sender: str | None = None  # part of the From address, case-insensitive
    since: datetime | None = None  # first seen at or after
    until: datetime | None = None  # first seen before
    text: str | None = None  # part of the subject, the From address or the Message-ID
    # only messages with a copy in one of these sources, or in one of these accounts
    # (lower-case); None: no restriction
    sources_any: frozenset[str] | None = None
    accounts_any: frozenset[str] | None = None


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(q: Select[Any], f: MessageFilter) -> Select[Any]:
    if f.states:
        q = q.where(messages.c.state.in_([s.value for s in f.states]))
    here = [locations.c.message_pk == messages.c.id]
    if f.source:
        here.append(locations.c.source == f.source)
    if f.folder:
        here.append(locations.c.folder == f.folder)
    if f.source or f.folder:
        q = q.where(exists().where(and_(*here)))
    if f.sources_any is not None or f.accounts_any is not None:
        mine = or_(
            locations.c.source.in_(sorted(f.sources_any or ())),
            func.lower(locations.c.account).in_(sorted(f.accounts_any or ())),
        )
        q = q.where(exists().where(and_(locations.c.message_pk == messages.c.id, mine)))
    if f.sender:
        q = q.where(func.lower(messages.c.from_address).like(_like(f.sender), escape="\\"))
    if f.since is not None:
        q = q.where(messages.c.created_at >= f.since)
    if f.until is not None:
        q = q.where(messages.c.created_at < f.until)
    if f.text:
        pattern = _like(f.text)
        q = q.where(
            or_(
                func.lower(messages.c.subject).like(pattern, escape="\\"),
                func.lower(messages.c.from_address).like(pattern, escape="\\"),
                func.lower(messages.c.message_id).like(pattern, escape="\\"),
            )
        )
    return q


def search_messages(
    reader: Engine, f: MessageFilter, limit: int | None, offset: int, *, oldest_first: bool = False
) -> tuple[list[MessageRow], int]:
    """The page of messages (newest first; a queue: oldest first) and how many match in all;
    `limit` None: every one from `offset` on."""
    ids = _where(select(messages.c.id), f)
    with reader.connect() as c:
        total = c.execute(select(func.count()).select_from(ids.subquery())).scalar_one()
        order = messages.c.id.asc() if oldest_first else messages.c.id.desc()
        page: list[int] = [r[0] for r in c.execute(ids.order_by(order).limit(limit).offset(offset))]
        rows = c.execute(select(messages).where(messages.c.id.in_(page))).all() if page else []
    by_id = {r.id: MessageRow.of(r) for r in rows}
    return [by_id[i] for i in page if i in by_id], int(total)


def count_by_reason(reader: Engine, f: MessageFilter) -> dict[str, int]:
    """How many messages match, per `reason` (the quarantine's "retry all of one reason")."""
    ids = _where(select(messages.c.id), f).subquery()
    q = (
        select(messages.c.reason, func.count())
        .where(messages.c.id.in_(select(ids.c.id)))
        .group_by(messages.c.reason)
        .order_by(func.count().desc(), messages.c.reason)
    )
    with reader.connect() as c:
        return {str(reason): int(n) for reason, n in c.execute(q).all()}
