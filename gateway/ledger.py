"""The ledger: processing state, journal, retries, quarantine, cursors (SQLite or PostgreSQL).

Every write is a short transaction; guarded updates (`UPDATE … WHERE state IN …`) decide
which worker owns a step, so concurrent workers never both do it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway import ledger_batch
from gateway.errors import Permanent, Retryable
from gateway.ledger_batch import _INSERT_EVENT, Bind, Finish
from gateway.ledger_schema import cursors, events, journal, locations, message_addresses, messages, status
from gateway.mailboxes.base import SourceRef

TERMINAL = frozenset({"done", "done_untagged", "ignored", "skipped", "review", "quarantined", "forgotten"})
LOCATION_OPEN = ("new", "waiting")


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MessageRow:
    id: int
    identity: str
    message_id: str
    content_hash: str
    state: str
    reason: str
    attempts: int
    next_attempt_at: datetime | None
    spool_path: str | None
    primary_location: int | None
    subject: str
    from_address: str
    size: int
    plan: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> MessageRow:
        m = row._mapping
        return cls(
            id=m["id"], identity=m["identity"], message_id=m["message_id"], content_hash=m["content_hash"],
            state=m["state"], reason=m["reason"] or "", attempts=m["attempts"] or 0,
            next_attempt_at=_aware(m["next_attempt_at"]), spool_path=m["spool_path"],
            primary_location=m["primary_location"], subject=m["subject"] or "",
            from_address=m["from_address"] or "", size=m["size"] or 0,
            plan=json.loads(m["plan_json"]) if m["plan_json"] else None,
            created_at=_aware(m["created_at"]), updated_at=_aware(m["updated_at"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class LocationRow:
    id: int
    message_pk: int | None
    ref: SourceRef
    state: str
    spool_path: str | None
    declared_size: int | None
    tags_add: tuple[str, ...]
    tags_remove: tuple[str, ...]
    move_to: str | None
    tags: tuple[str, ...]
    seen_at: datetime

    @classmethod
    def of(cls, row: Any) -> LocationRow:
        m = row._mapping
        return cls(
            id=m["id"], message_pk=m["message_pk"],
            ref=SourceRef(m["source"], m["account"], m["folder"], m["item_key"], m["uidvalidity"] or 0),
            state=m["state"], spool_path=m["spool_path"], declared_size=m["declared_size"], tags_add=tuple(json.loads(m["tags_add"] or "[]")),
            tags_remove=tuple(json.loads(m["tags_remove"] or "[]")), move_to=m["move_to"],
            tags=tuple(json.loads(m["tags"] or "[]")), seen_at=_aware(m["seen_at"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Binding:
    message_pk: int
    primary: bool  # this location made the message row: its worker does the CRM work
    state: str  # the message's state at binding time
    row: MessageRow | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun below, writers IMMEDIATE
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        if url != "sqlite:///:memory:":
            from gateway.locks import SqliteWriterLock

            SqliteWriterLock(url[len("sqlite:///"):]).attach(engine, is_write=_is_write)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if _is_write(conn) else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


# Built once: SQLAlchemy then reuses their compiled form; building statements per call was a
# fifth of the hot path's time. (The batch writes' statements are in gateway.ledger_batch.)
_INSERT_LOCATION = insert(locations)
_JOURNAL_OF = select(journal.c.step, journal.c.result).where(journal.c.message_pk == bindparam("b_message_pk"))


_INSERT_IGNORE: dict[tuple[str, str], Any] = {}


def _insert_ignore(conn: Any, table: Any) -> Any:
    """INSERT that skips rows whose unique key exists (SQLite OR IGNORE / PostgreSQL ON CONFLICT)."""
    key = (conn.dialect.name, table.name)
    if key not in _INSERT_IGNORE:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            _INSERT_IGNORE[key] = pg_insert(table).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            _INSERT_IGNORE[key] = sqlite_insert(table).on_conflict_do_nothing()
    return _INSERT_IGNORE[key]


_LOCATIONS_BY_KEYS = select(locations).where(
    locations.c.source == bindparam("b_source"), locations.c.account == bindparam("b_account"),
    locations.c.folder == bindparam("b_folder"), locations.c.uidvalidity == bindparam("b_uv"),
    locations.c.item_key.in_(bindparam("b_keys", expanding=True)))


def _is_write(conn: Any) -> bool:
    return bool(conn.get_execution_options().get("ledger_write", False))


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.reader = make_engine(url)
        # Writes go through this view of the engine: on SQLite they take the writer lock and
        # BEGIN IMMEDIATE, so a transaction never upgrades from read to write halfway.
        self.engine = self.reader.execution_options(ledger_write=True)
        from gateway.ledger_migrations import SCHEMA
        from gateway.migrations import SchemaTooNew  # not alembic's own: importing alembic costs ~17 MB

        try:
            SCHEMA.upgrade(self.engine)  # an older ledger is upgraded in place
        except OperationalError as exc:
            raise Retryable(f"ledger unreachable: {exc.orig}") from None
        except SchemaTooNew as exc:  # a revision this version does not know: written by a newer one
            raise Permanent(f"the ledger at {url} was written by a newer version of the gateway ({exc})") from None

    def close(self) -> None:
        self.reader.dispose()

    # ---- intake -------------------------------------------------------------------------

    def receive(self, ref: SourceRef, spool_path: str | None, declared_size: int | None = None) -> LocationRow:
        """Record that a copy exists at `ref` (idempotent: a known location is returned as is).

        `declared_size`: the source spooled only the headers of a mail this big."""
        t = now()
        try:
            with self.engine.begin() as c:
                pk = c.execute(_INSERT_LOCATION, {
                    "source": ref.source, "account": ref.account, "folder": ref.folder, "uidvalidity": ref.uidvalidity,
                    "item_key": ref.item_key, "state": "new", "spool_path": spool_path, "declared_size": declared_size,
                    "tags_add": "[]", "tags_remove": "[]", "tags": "[]", "seen_at": t, "updated_at": t}
                ).inserted_primary_key[0]  # type: ignore[index]  # typed Optional; an INSERT's result has it
        except IntegrityError:  # known already (a rescan, or another worker at the same moment)
            got = self.location_at(ref)
            assert got is not None
            return got
        return LocationRow(id=pk, message_pk=None, ref=ref, state="new", spool_path=spool_path,
                           declared_size=declared_size, tags_add=(), tags_remove=(), move_to=None, tags=(), seen_at=t)

    def receive_many(self, items: Sequence[tuple[SourceRef, str | None, int | None]]) -> list[LocationRow]:
        """`receive` for a batch in one transaction; rows in the order of `items`."""
        if len(items) == 1:
            return [self.receive(*items[0])]
        t = now()
        rows = [{"source": r.source, "account": r.account, "folder": r.folder, "uidvalidity": r.uidvalidity,
                 "item_key": r.item_key, "state": "new", "spool_path": p, "declared_size": d, "tags_add": "[]",
                 "tags_remove": "[]", "tags": "[]", "seen_at": t, "updated_at": t} for r, p, d in items]
        found: dict[tuple[Any, ...], LocationRow] = {}
        with self.engine.begin() as c:
            c.execute(_insert_ignore(c, locations), rows)  # a known copy keeps its row
            groups: dict[tuple[Any, ...], list[str]] = {}
            for r, _, _ in items:
                groups.setdefault((r.source, r.account, r.folder, r.uidvalidity), []).append(r.item_key)
            for (source, account, folder, uv), keys in groups.items():
                for i in range(0, len(keys), 500):
                    for row in c.execute(_LOCATIONS_BY_KEYS, {"b_source": source, "b_account": account, "b_folder": folder,
                                                              "b_uv": uv, "b_keys": keys[i:i + 500]}):
                        loc = LocationRow.of(row)
                        found[(source, account, folder, uv, loc.ref.item_key)] = loc
        return [found[(r.source, r.account, r.folder, r.uidvalidity, r.item_key)] for r, _, _ in items]

    def location_at(self, ref: SourceRef) -> LocationRow | None:
        with self.reader.connect() as c:
            row = c.execute(select(locations).where(
                locations.c.source == ref.source, locations.c.account == ref.account, locations.c.folder == ref.folder,
                locations.c.uidvalidity == ref.uidvalidity, locations.c.item_key == ref.item_key)).first()
        return LocationRow.of(row) if row else None

    def known_keys(self, source: str, account: str, folder: str, uidvalidity: int = 0) -> set[str]:
        with self.reader.connect() as c:
            return set(c.execute(select(locations.c.item_key).where(
                locations.c.source == source, locations.c.account == account, locations.c.folder == folder,
                locations.c.uidvalidity == uidvalidity)).scalars())

    def bind(self, location_pk: int, *, message_id: str, content_hash: str, subject: str = "",
             from_address: str = "", size: int = 0, addresses: Iterable[str] = (), spool_path: str | None = None,
             state: str = "processing", reason: str = "", label: str = "") -> Binding:
        """Give a location its message: insert the identity (this copy is the primary) or link to it."""
        return self.bind_many([Bind(location_pk, message_id, content_hash, subject, from_address, size,
                                    tuple(addresses), spool_path, state, reason, label)])[0]

    def bind_many(self, items: Sequence[Bind]) -> list[Binding]:
        """`bind` for a batch, in one transaction (gateway.ledger_batch)."""
        return ledger_batch.bind_many(self, items)

    def start_plan(self, message_pk: int, plan: dict[str, Any], steps: Sequence[str], detail: str) -> dict[str, Any]:
        """Store the evaluated Plan and the intent of each of its CRM steps, in one transaction;
        return the journal (step → result, None for an intent only).

        The intents are recorded before any CRM call, so after a crash a step with an intent
        and no result is looked up in the CRM and adopted, never done twice. A message sent
        through the rules again keeps the results of its earlier run (`reopen`), so a record
        it created stays adopted as created."""
        return self.start_plan_many([(message_pk, plan, steps, detail)])[0]

    def start_plan_many(self, items: Sequence[tuple[int, dict[str, Any], Sequence[str], str]]) -> list[dict[str, Any]]:
        """`start_plan` for a batch, in one transaction (gateway.ledger_batch)."""
        return ledger_batch.start_plan_many(self, items)

    def reopen(self, message_pk: int, state: str = "received") -> int:
        """Send a message through the current rules again (quarantine retry, reprocess).

        Its old Plan and the intents that never got a result go (the next evaluation makes its
        own); results stay, to be adopted. The primary copy is handled again; the other copies
        wait for its outcome with the tags they planned. Returns the primary location."""
        t = now()
        with self.engine.begin() as c:
            primary = c.execute(select(messages.c.primary_location).where(messages.c.id == message_pk)).scalar()
            if primary is None:
                raise KeyError(message_pk)  # no such message: nothing to reopen
            c.execute(delete(journal).where(journal.c.message_pk == message_pk, journal.c.result.is_(None)))
            c.execute(delete(journal).where(journal.c.message_pk == message_pk, journal.c.step == "crm_done"))
            c.execute(update(messages).where(messages.c.id == message_pk).values(
                state=state, plan_json=None, attempts=0, next_attempt_at=None, updated_at=t))
            c.execute(update(locations).where(locations.c.message_pk == message_pk, locations.c.id == primary).values(
                state="new", updated_at=t))
            c.execute(update(locations).where(locations.c.message_pk == message_pk, locations.c.id != primary).values(
                state="waiting", updated_at=t))
            c.execute(_INSERT_EVENT, {"message_pk": message_pk, "at": t, "event": state,
                                      "detail": "sent through the rules again"})
        return int(primary)

    def finish(self, message_pk: int, *, state: str, reason: str = "", plan: dict[str, Any] | None = None,
               results: dict[str, Any] | None = None, location_pk: int | None = None, tags: Sequence[str] = (),
               location_state: str = "applied", planned: tuple[Sequence[str], Sequence[str], str | None] | None = None,
               moved_to: SourceRef | None = None, events_: Sequence[tuple[str, str]] = (),
               results_are_new: bool = False, marks: dict[str, Any] | None = None) -> list[int]:
        """Record the CRM steps' results, the message's final state and its primary copy's tags
        (and the tags its rules planned) in one transaction; return the other copies that are
        waiting for their tags."""
        return self.finish_many([Finish(message_pk, state, reason, plan, results, location_pk, tuple(tags),
                                        location_state, planned, moved_to, tuple(events_), results_are_new, marks)])[0]

    def finish_many(self, items: Sequence[Finish]) -> list[list[int]]:
        """`finish` for a batch, in one transaction (gateway.ledger_batch)."""
        return ledger_batch.finish_many(self, items)

    # ---- message state ------------------------------------------------------------------

    def set_state(self, message_pk: int, state: str, reason: str = "", *, plan: dict[str, Any] | None = None,
                  event_detail: str | None = None, only_from: Sequence[str] | None = None) -> bool:
        t = now()
        values: dict[str, Any] = {"state": state, "reason": reason, "updated_at": t}
        if plan is not None:
            values["plan_json"] = json.dumps(plan, default=str)
        if state != "retrying":
            values["next_attempt_at"] = None
        cond = [messages.c.id == message_pk]
        if only_from is not None:
            cond.append(messages.c.state.in_(list(only_from)))
        with self.engine.begin() as c:
            changed = c.execute(update(messages).where(*cond).values(**values)).rowcount
            if changed:
                c.execute(insert(events).values(message_pk=message_pk, at=t, event=state,
                                                detail=event_detail if event_detail is not None else reason))
        return bool(changed)

    def schedule_retry(self, message_pk: int, reason: str, delay: float) -> int:
        """Retry a message later. A message in a final state is never sent back (a failure on
        one of its copies is that copy's, not the message's): then nothing changes."""
        t = now()
        with self.engine.begin() as c:
            state = c.execute(select(messages.c.state).where(messages.c.id == message_pk)).scalar()
            if state in TERMINAL:
                return 0
            attempts = (c.execute(select(messages.c.attempts).where(messages.c.id == message_pk)).scalar() or 0) + 1
            c.execute(update(messages).where(messages.c.id == message_pk).values(
                state="retrying", reason=reason, attempts=attempts, next_attempt_at=t + timedelta(seconds=delay), updated_at=t))
            c.execute(insert(events).values(message_pk=message_pk, at=t, event="retrying",
                                            detail=f"attempt {attempts} failed: {reason}; next in {delay:.0f}s"))
        return attempts

    def reset_attempts(self, message_pk: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(messages).where(messages.c.id == message_pk).values(attempts=0, next_attempt_at=None))

    def add_event(self, message_pk: int, event_name: str, detail: str = "") -> None:
        with self.engine.begin() as c:
            c.execute(insert(events).values(message_pk=message_pk, at=now(), event=event_name, detail=detail))

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

    def messages_in(self, states: Sequence[str], since: datetime | None = None) -> list[MessageRow]:
        q = select(messages).where(messages.c.state.in_(list(states)))
        if since is not None:
            q = q.where(messages.c.created_at >= since)
        with self.reader.connect() as c:
            return [MessageRow.of(r) for r in c.execute(q.order_by(messages.c.id)).all()]

    def due_retries(self, at: datetime | None = None) -> list[int]:
        with self.reader.connect() as c:
            return list(c.execute(select(messages.c.id).where(
                messages.c.state == "retrying", messages.c.next_attempt_at <= (at or now())).order_by(messages.c.id)).scalars())

    def next_retry_at(self) -> datetime | None:
        with self.reader.connect() as c:
            return _aware(c.execute(select(func.min(messages.c.next_attempt_at)).where(messages.c.state == "retrying")).scalar())

    def events(self, message_pk: int) -> list[tuple[datetime, str, str]]:
        with self.reader.connect() as c:
            rows = c.execute(select(events.c.at, events.c.event, events.c.detail).where(
                events.c.message_pk == message_pk).order_by(events.c.id)).all()
        return [(_aware(r.at), r.event, r.detail) for r in rows]  # type: ignore[misc]

    # ---- journal ------------------------------------------------------------------------

    def journal(self, message_pk: int) -> dict[str, Any]:
        """step → result (None: the intent was recorded but its result never was)."""
        with self.reader.connect() as c:
            rows = c.execute(_JOURNAL_OF, {"b_message_pk": message_pk}).all()
        return {r.step: (json.loads(r.result) if r.result is not None else None) for r in rows}

    def intent(self, message_pk: int, step: str) -> None:
        try:
            with self.engine.begin() as c:
                c.execute(insert(journal).values(message_pk=message_pk, step=step, intent_at=now()))
        except IntegrityError:
            pass  # the intent is already there from an earlier attempt

    def result(self, message_pk: int, step: str, value: Any) -> None:
        with self.engine.begin() as c:
            c.execute(update(journal).where(journal.c.message_pk == message_pk, journal.c.step == step).values(
                result=json.dumps(value, default=str), done_at=now()))

    def created_refs(self) -> set[tuple[str, str]]:
        """(kind, id) of every record the gateway's journal says it created, whatever path made
        it: a rule's `create:…` step or a person's `review create` (`review:create:…`)."""
        out: set[tuple[str, str]] = set()
        with self.reader.connect() as c:
            for _step, result in c.execute(select(journal.c.step, journal.c.result).where(
                    or_(journal.c.step.like("create:%"), journal.c.step.like("review:create:%")),
                    journal.c.result.is_not(None))):
                value = json.loads(result)
                if isinstance(value, dict) and value.get("created"):
                    out.add((value["kind"], str(value["id"])))
        return out

    # ---- locations ----------------------------------------------------------------------

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
            for i in range(0, len(location_pks), 500):
                for row in c.execute(select(locations).where(locations.c.id.in_(list(location_pks[i:i + 500])))):
                    out[row.id] = LocationRow.of(row)
        return out

    def locations_of(self, message_pk: int) -> list[LocationRow]:
        with self.reader.connect() as c:
            rows = c.execute(select(locations).where(locations.c.message_pk == message_pk).order_by(locations.c.id)).all()
        return [LocationRow.of(r) for r in rows]

    def plan_location(self, location_pk: int, add: Sequence[str], remove: Sequence[str], move: str | None,
                      state: str = "waiting") -> None:
        with self.engine.begin() as c:
            c.execute(update(locations).where(locations.c.id == location_pk).values(
                tags_add=json.dumps(list(add)), tags_remove=json.dumps(list(remove)), move_to=move,
                state=state, updated_at=now()))

    def take_location(self, location_pk: int, from_states: Sequence[str], to_state: str) -> bool:
        """Guarded state change: True for the one caller that made it."""
        with self.engine.begin() as c:
            return bool(c.execute(update(locations).where(
                locations.c.id == location_pk, locations.c.state.in_(list(from_states))).values(
                state=to_state, updated_at=now())).rowcount)

    def location_tagged(self, location_pk: int, tags: Sequence[str], state: str, ref: SourceRef | None = None) -> None:
        values: dict[str, Any] = {"tags": json.dumps(sorted(set(tags))), "state": state, "updated_at": now()}
        if ref is not None:  # the write-back found it elsewhere (moved by the user, or by our `move`)
            values.update(folder=ref.folder, item_key=ref.item_key, uidvalidity=ref.uidvalidity)
        with self.engine.begin() as c:
            c.execute(update(locations).where(locations.c.id == location_pk).values(**values))

    def reset_interrupted(self) -> int:
        """At start: a copy left 'tagging' by a process that died mid-write waits again."""
        with self.engine.begin() as c:
            return c.execute(update(locations).where(locations.c.state == "tagging").values(
                state="waiting", updated_at=now())).rowcount

    def open_locations(self) -> list[int]:
        """Locations whose work is not finished: to re-queue after a restart or a crash."""
        with self.reader.connect() as c:
            rows = c.execute(select(locations.c.id).select_from(
                locations.outerjoin(messages, locations.c.message_pk == messages.c.id)).where(or_(
                    locations.c.message_pk.is_(None),
                    locations.c.state.in_(LOCATION_OPEN) & ~messages.c.state.in_(["retrying"]),
                    messages.c.state.in_(["received", "processing", "crm_done"]),
                )).order_by(locations.c.id)).scalars()
            return list(rows)

    # ---- cursors and status -------------------------------------------------------------

    def get_cursor(self, source: str, account: str, folder: str) -> Any:
        with self.reader.connect() as c:
            v = c.execute(select(cursors.c.value).where(
                cursors.c.source == source, cursors.c.account == account, cursors.c.folder == folder)).scalar()
        return json.loads(v) if v is not None else None

    def set_cursor(self, source: str, account: str, folder: str, value: Any) -> None:
        self._upsert(cursors, {"source": source, "account": account, "folder": folder},
                     {"value": json.dumps(value), "updated_at": now()})

    def set_status(self, key: str, value: dict[str, Any]) -> None:
        self._upsert(status, {"key": key}, {"value": json.dumps(value, default=str), "updated_at": now()})

    def all_status(self) -> dict[str, dict[str, Any]]:
        with self.reader.connect() as c:
            return {r.key: {**json.loads(r.value), "updated_at": _aware(r.updated_at).isoformat()}  # type: ignore[union-attr]
                    for r in c.execute(select(status)) if not r.key.startswith("work:")}  # see ledger_work

    def _upsert(self, table: Any, keys: dict[str, Any], values: dict[str, Any]) -> None:
        cond = and_(*[table.c[k] == v for k, v in keys.items()])
        with self.engine.begin() as c:
            if not c.execute(update(table).where(cond).values(**values)).rowcount:
                try:
                    with c.begin_nested():
                        c.execute(insert(table).values(**keys, **values))
                except IntegrityError:
                    c.execute(update(table).where(cond).values(**values))

    def counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """(source, folder) → {state: number of copies}; a copy's state is its message's."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        with self.reader.connect() as c:
            rows = c.execute(select(locations.c.source, locations.c.folder, messages.c.state, func.count()).select_from(
                locations.outerjoin(messages, locations.c.message_pk == messages.c.id)).group_by(
                locations.c.source, locations.c.folder, messages.c.state))
            for source, folder, state, n in rows:
                out.setdefault((source, folder), {})[state or "received"] = n
        return out

    # ---- data protection ----------------------------------------------------------------

    def forget_address(self, address_key: str) -> list[MessageRow]:
        """Erase what the ledger knows of every message with this address; return them as they were.

        The rows stay as tombstones (state `forgotten`, no subject, sender, plan or history)
        with their locations, so the copies still in a mailbox are not processed again and
        the person is not re-created from them.
        """
        with self.reader.connect() as c:
            pks = list(c.execute(select(message_addresses.c.message_pk).where(
                message_addresses.c.address_key == address_key)).scalars())
        gone = [self.message(pk) for pk in pks]
        if pks:
            with self.engine.begin() as c:
                for table, col in ((events, events.c.message_pk), (journal, journal.c.message_pk),
                                   (message_addresses, message_addresses.c.message_pk)):
                    c.execute(delete(table).where(col.in_(pks)))
                c.execute(update(messages).where(messages.c.id.in_(pks)).values(
                    state="forgotten", reason="erased on request", subject="", from_address="", plan_json=None,
                    spool_path=None, next_attempt_at=None, updated_at=now()))
                c.execute(update(locations).where(locations.c.message_pk.in_(pks)).values(spool_path=None))
        return gone
