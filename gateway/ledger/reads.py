"""What the ledger knows, read without writing: messages, copies, journal, history, cursors,
status and counts. `Ledger` (gateway.ledger.store) adds the writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from gateway.ledger.database import chunks
from gateway.ledger.refs import SourceRef
from gateway.ledger.rows import LocationRow, MessageRow, aware, now
from gateway.ledger.schema import WORK_PREFIX, cursors, events, journal, locations, messages, status
from gateway.ledger.states import LOCATION_OPEN, TERMINAL, LocationState, MessageState

# Built once: SQLAlchemy then reuses its compiled form (read for every message in work).
_JOURNAL_OF = select(journal.c.step, journal.c.result).where(journal.c.message_pk == bindparam("b_message_pk"))
# Messages whose work is not finished: re-queued after a restart or a crash.
_IN_WORK = [MessageState.RECEIVED.value, MessageState.PROCESSING.value, MessageState.CRM_DONE.value]
# Whether the work of a copy in mailbox (source, account) is this gateway's: gateways sharing
# a ledger each take only the work of the mailboxes they hold (gateway/runtime/leases.py).
Owns = Callable[[str, str], bool]


class LedgerReader:
    reader: Engine

    # ---- messages -----------------------------------------------------------------------

    def message(self, message_pk: int) -> MessageRow:
        with self.reader.connect() as c:
            row = c.execute(select(messages).where(messages.c.id == message_pk)).first()
        if row is None:
            raise KeyError(message_pk)
        return MessageRow.of(row)

    def find_messages(self, message_id: str) -> list[MessageRow]:
        mid = message_id.strip()
        wanted = [mid, f"<{mid.strip('<>')}>"]
        with self.reader.connect() as c:
            rows = c.execute(select(messages).where(messages.c.message_id.in_(wanted)).order_by(messages.c.id)).all()
        return [MessageRow.of(r) for r in rows]

    def messages_in(self, states: Sequence[MessageState | str], since: datetime | None = None) -> list[MessageRow]:
        q = select(messages).where(messages.c.state.in_([MessageState(s).value for s in states]))
        if since is not None:
            q = q.where(messages.c.created_at >= since)
        with self.reader.connect() as c:
            return [MessageRow.of(r) for r in c.execute(q.order_by(messages.c.id)).all()]

    def due_retries(self, at: datetime | None = None, owns: Owns | None = None) -> list[int]:
        """Messages whose retry is due; with `owns`, those whose primary copy's mailbox it owns."""
        with self.reader.connect() as c:
            rows = c.execute(
                select(messages.c.id, locations.c.source, locations.c.account)
                .select_from(messages.outerjoin(locations, messages.c.primary_location == locations.c.id))
                .where(messages.c.state == MessageState.RETRYING.value, messages.c.next_attempt_at <= (at or now()))
                .order_by(messages.c.id)
            ).all()
        return [r.id for r in rows if owns is None or r.source is None or owns(r.source, r.account)]

    def next_retry_at(self) -> datetime | None:
        with self.reader.connect() as c:
            return aware(
                c.execute(
                    select(func.min(messages.c.next_attempt_at)).where(messages.c.state == MessageState.RETRYING.value)
                ).scalar()
            )

    def events(self, message_pk: int) -> list[tuple[datetime, str, str]]:
        with self.reader.connect() as c:
            rows = c.execute(
                select(events.c.at, events.c.event, events.c.detail)
                .where(events.c.message_pk == message_pk)
                .order_by(events.c.id)
            ).all()
        return [(aware(r.at), r.event, r.detail) for r in rows]  # type: ignore[misc]

    # ---- journal ------------------------------------------------------------------------

    def journal(self, message_pk: int) -> dict[str, Any]:
        """step → result (None: the intent was recorded but its result never was)."""
        with self.reader.connect() as c:
            rows = c.execute(_JOURNAL_OF, {"b_message_pk": message_pk}).all()
        return {r.step: (json.loads(r.result) if r.result is not None else None) for r in rows}

    def created_refs(self) -> set[tuple[str, str]]:
        """(kind, id) of every record the gateway's journal says it created, whatever path made
        it: a rule's `create:…` step or a person's `review create` (`review:create:…`)."""
        out: set[tuple[str, str]] = set()
        with self.reader.connect() as c:
            for _step, result in c.execute(
                select(journal.c.step, journal.c.result).where(
                    or_(journal.c.step.like("create:%"), journal.c.step.like("review:create:%")), journal.c.result.is_not(None)
                )
            ):
                value = json.loads(result)
                if isinstance(value, dict) and value.get("created"):
                    out.add((value["kind"], str(value["id"])))
        return out

    # ---- locations ----------------------------------------------------------------------

    def location_at(self, ref: SourceRef) -> LocationRow | None:
        with self.reader.connect() as c:
            row = c.execute(
                select(locations).where(
                    locations.c.source == ref.source,
                    locations.c.account == ref.account,
                    locations.c.folder == ref.folder,
                    locations.c.uidvalidity == ref.uidvalidity,
                    locations.c.item_key == ref.item_key,
                )
            ).first()
        return LocationRow.of(row) if row else None

    def known_keys(self, source: str, account: str, folder: str, uidvalidity: int = 0) -> set[str]:
        with self.reader.connect() as c:
            return set(
                c.execute(
                    select(locations.c.item_key).where(
                        locations.c.source == source,
                        locations.c.account == account,
                        locations.c.folder == folder,
                        locations.c.uidvalidity == uidvalidity,
                    )
                ).scalars()
            )

    def location(self, location_pk: int) -> LocationRow:
        with self.reader.connect() as c:
            row = c.execute(select(locations).where(locations.c.id == location_pk)).first()
        if row is None:
            raise KeyError(location_pk)
        return LocationRow.of(row)

    def locations(self, location_pks: Sequence[int]) -> dict[int, LocationRow]:
        """The rows of these locations (one read; a location that does not exist is left out)."""
        out: dict[int, LocationRow] = {}
        with self.reader.connect() as c:
            for chunk in chunks(list(location_pks)):
                for row in c.execute(select(locations).where(locations.c.id.in_(chunk))):
                    out[row.id] = LocationRow.of(row)
        return out

    def locations_of(self, message_pk: int) -> list[LocationRow]:
        with self.reader.connect() as c:
            rows = c.execute(select(locations).where(locations.c.message_pk == message_pk).order_by(locations.c.id)).all()
        return [LocationRow.of(r) for r in rows]

    def copies_of(self, message_pks: Sequence[int]) -> dict[int, list[LocationRow]]:
        """`locations_of` for many messages in one query per chunk (a page of a listing)."""
        out: dict[int, list[LocationRow]] = {pk: [] for pk in message_pks}
        with self.reader.connect() as c:
            for i in range(0, len(message_pks), 500):
                chunk = list(message_pks[i : i + 500])
                q = select(locations).where(locations.c.message_pk.in_(chunk)).order_by(locations.c.id)
                for r in c.execute(q).all():
                    out[r.message_pk].append(LocationRow.of(r))
        return out

    def open_locations(self, owns: Owns | None = None) -> list[int]:
        """Locations whose work is not finished: to re-queue after a restart or a crash. With
        `owns`, only those in the mailboxes it owns (a copy's work is its own mailbox's holder's)."""
        with self.reader.connect() as c:
            rows = c.execute(
                select(locations.c.id, locations.c.source, locations.c.account)
                .select_from(locations.outerjoin(messages, locations.c.message_pk == messages.c.id))
                .where(
                    or_(
                        locations.c.message_pk.is_(None),
                        locations.c.state.in_([s.value for s in LOCATION_OPEN])
                        & ~messages.c.state.in_([MessageState.RETRYING.value]),
                        messages.c.state.in_(_IN_WORK),
                    )
                )
                .order_by(locations.c.id)
            ).all()
        return [r.id for r in rows if owns is None or owns(r.source, r.account)]

    def handed_over(self, owns: Owns) -> list[int]:
        """Copies waiting for tags whose message has its outcome, in the mailboxes `owns` owns:
        another gateway finished the message, the tags of this copy are this gateway's to write."""
        with self.reader.connect() as c:
            rows = c.execute(
                select(locations.c.id, locations.c.source, locations.c.account)
                .select_from(locations.join(messages, locations.c.message_pk == messages.c.id))
                .where(
                    locations.c.state == LocationState.WAITING.value,
                    messages.c.state.in_([s.value for s in TERMINAL if s != MessageState.FORGOTTEN]),
                )
                .order_by(locations.c.id)
            ).all()
        return [r.id for r in rows if owns(r.source, r.account)]

    # ---- cursors, status and counts -----------------------------------------------------

    def get_cursor(self, source: str, account: str, folder: str) -> Any:
        with self.reader.connect() as c:
            v = c.execute(
                select(cursors.c.value).where(
                    cursors.c.source == source, cursors.c.account == account, cursors.c.folder == folder
                )
            ).scalar()
        return json.loads(v) if v is not None else None

    def all_status(self) -> dict[str, dict[str, Any]]:
        """Every status row but the work marks (gateway.ledger.work keeps its own there)."""
        with self.reader.connect() as c:
            return {
                r.key: {**json.loads(r.value), "updated_at": aware(r.updated_at).isoformat()}  # type: ignore[union-attr]
                for r in c.execute(select(status))
                if not r.key.startswith(WORK_PREFIX)
            }

    def counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """(source, folder) → {state: number of copies}; a copy's state is its message's."""
        return self._counts_by(locations.c.folder)

    def counts_by_mailbox(self) -> dict[tuple[str, str], dict[str, int]]:
        """(source, account) → {state: number of copies}: a source reaching many mailboxes
        counted per mailbox (the console shows a person their own mailbox's counts only)."""
        return self._counts_by(locations.c.account)

    def _counts_by(self, column: ColumnElement[str]) -> dict[tuple[str, str], dict[str, int]]:
        out: dict[tuple[str, str], dict[str, int]] = {}
        with self.reader.connect() as c:
            rows = c.execute(
                select(locations.c.source, column, messages.c.state, func.count())
                .select_from(locations.outerjoin(messages, locations.c.message_pk == messages.c.id))
                .group_by(locations.c.source, column, messages.c.state)
            )
            for source, where, state, n in rows:
                out.setdefault((source, where), {})[state or MessageState.RECEIVED.value] = n
        return out
