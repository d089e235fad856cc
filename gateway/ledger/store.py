"""The ledger: processing state, journal, retries, quarantine, cursors (SQLite or PostgreSQL).

Every write is a short transaction that returns what it wrote. A state change names the state
it comes from: the current state is read (and locked) in the transaction, checked against the
transition tables (gateway.ledger.states) and the UPDATE is guarded by it, so concurrent
workers never both make one move, and an illegal move raises and writes nothing. The batch
writes are in gateway.ledger.claims and gateway.ledger.outcomes, the one-at-a-time state
moves in gateway.ledger.moves, the erasure of a person in gateway.ledger.erasure; the reads
in gateway.ledger.reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.errors import Permanent, Retryable
from gateway.ledger import claims, erasure, moves, outcomes
from gateway.ledger.database import make_engine
from gateway.ledger.pim import PimLedger
from gateway.ledger.reads import LedgerReader, Owns
from gateway.ledger.refs import SourceRef
from gateway.ledger.rows import Bind, Binding, Finish, LocationRow, MessageRow, now
from gateway.ledger.schema import cursors, events, journal, message_addresses, messages, status
from gateway.ledger.states import LocationState, MessageState


class Ledger(LedgerReader):
    def __init__(self, url: str, *, connections: int = 10) -> None:
        """`connections`: the threads that may use the ledger at once (PostgreSQL's pool size)."""
        self.url = url
        self.reader = make_engine(url, connections)
        # Writes go through this view of the engine: on SQLite they take the writer lock and
        # BEGIN IMMEDIATE, so a transaction never upgrades from read to write halfway.
        self.engine = self.reader.execution_options(ledger_write=True)
        from gateway.database.migrations import SchemaTooNew  # not alembic's own: importing alembic costs ~17 MB
        from gateway.ledger.migrations import SCHEMA

        try:
            SCHEMA.upgrade(self.engine)  # an older ledger is upgraded in place
        except OperationalError as exc:
            raise Retryable(f"ledger unreachable: {exc.orig}") from None
        except SchemaTooNew as exc:  # a revision this version does not know: written by a newer one
            raise Permanent(f"the ledger at {url} was written by a newer version of the gateway ({exc})") from None

    def pim(self) -> PimLedger:
        """The contact sync's links, journal, conflicts and cursors (gateway/ledger/pim.py)."""
        return PimLedger(self.reader, self.engine)

    def close(self) -> None:
        self.reader.dispose()

    # ---- intake -------------------------------------------------------------------------

    def receive(self, ref: SourceRef, spool_path: str | None, declared_size: int | None = None) -> LocationRow:
        """Record that a copy exists at `ref` (idempotent: a known location is returned as is).

        `declared_size`: the source spooled only the headers of a mail this big."""
        t = now()
        try:
            with self.engine.begin() as c:
                pk = c.execute(
                    claims.INSERT_LOCATION, claims.new_location(ref, spool_path, declared_size, t)
                ).inserted_primary_key[0]  # type: ignore[index]  # typed Optional; an INSERT's result has it
        except IntegrityError:  # known already (a rescan, or another worker at the same moment)
            got = self.location_at(ref)
            assert got is not None
            return got
        return LocationRow(
            id=pk,
            message_pk=None,
            ref=ref,
            state=LocationState.NEW,
            spool_path=spool_path,
            declared_size=declared_size,
            tags_add=(),
            tags_remove=(),
            move_to=None,
            tags=(),
            seen_at=t,
        )

    def receive_many(self, items: Sequence[tuple[SourceRef, str | None, int | None]]) -> list[LocationRow]:
        """`receive` for a batch in one transaction; rows in the order of `items`."""
        if len(items) == 1:
            return [self.receive(*items[0])]
        with self.engine.begin() as c:
            return claims.receive_many(c, now(), items)

    def bind(
        self,
        location_pk: int,
        *,
        message_id: str,
        content_hash: str,
        subject: str = "",
        from_address: str = "",
        size: int = 0,
        addresses: Iterable[str] = (),
        spool_path: str | None = None,
        state: MessageState | str = MessageState.PROCESSING,
        reason: str = "",
        label: str = "",
    ) -> Binding:
        """Give a location its message: insert the identity (this copy is the primary) or link to it."""
        return self.bind_many(
            [
                Bind(
                    location_pk,
                    message_id,
                    content_hash,
                    subject,
                    from_address,
                    size,
                    tuple(addresses),
                    spool_path,
                    state,
                    reason,
                    label,
                )
            ]
        )[0]

    def bind_many(self, items: Sequence[Bind]) -> list[Binding]:
        """`bind` for a batch, in one transaction (gateway.ledger.claims)."""
        with self.engine.begin() as c:
            return claims.bind_many(c, now(), items)

    def start_plan(self, message_pk: int, plan_json: str, steps: Sequence[str], detail: str) -> dict[str, Any]:
        """Store the evaluated Plan and the intent of each of its CRM steps, in one transaction;
        return the journal (step → result, None for an intent only).

        The intents are recorded before any CRM call, so after a crash a step with an intent
        and no result is looked up in the CRM and adopted, never done twice. A message sent
        through the rules again keeps the results of its earlier run (`reopen`), so a record
        it created stays adopted as created."""
        return self.start_plan_many([(message_pk, plan_json, steps, detail)])[0]

    def start_plan_many(self, items: Sequence[tuple[int, str, Sequence[str], str]]) -> list[dict[str, Any]]:
        """`start_plan` for a batch, in one transaction (gateway.ledger.outcomes)."""
        with self.engine.begin() as c:
            return outcomes.start_plan_many(c, now(), items)

    def reopen(self, message_pk: int, state: MessageState | str = MessageState.RECEIVED, *, redo: Sequence[str] = ()) -> int:
        """Send a message through the current rules again (quarantine retry, reprocess).

        Its old Plan and the intents that never got a result go (the next evaluation makes its
        own); results stay, to be adopted. The primary copy is handled again; the other copies
        wait for its outcome with the tags they planned. Returns the primary location.

        `redo`: journal steps done before whose results go as well, so they are done again
        (`reconcile --fix`: the attach of a mail whose CRM email is gone)."""
        with self.engine.begin() as c:
            return outcomes.reopen(c, now(), message_pk, state, redo)

    def finish(
        self,
        message_pk: int,
        *,
        state: MessageState | str,
        reason: str = "",
        plan_json: str | None = None,
        results: dict[str, Any] | None = None,
        location_pk: int | None = None,
        tags: Sequence[str] = (),
        location_state: LocationState | str = LocationState.APPLIED,
        planned: tuple[Sequence[str], Sequence[str], str | None] | None = None,
        moved_to: SourceRef | None = None,
        events_: Sequence[tuple[str, str]] = (),
        results_are_new: bool = False,
        marks: dict[str, Any] | None = None,
    ) -> list[int]:
        """Record the CRM steps' results, the message's final state and its primary copy's tags
        (and the tags its rules planned) in one transaction; return the other copies that are
        waiting for their tags."""
        return self.finish_many(
            [
                Finish(
                    message_pk,
                    state,
                    reason,
                    plan_json,
                    results,
                    location_pk,
                    tuple(tags),
                    location_state,
                    planned,
                    moved_to,
                    tuple(events_),
                    results_are_new,
                    marks,
                )
            ]
        )[0]

    def finish_many(self, items: Sequence[Finish]) -> list[list[int]]:
        """`finish` for a batch, in one transaction (gateway.ledger.outcomes)."""
        with self.engine.begin() as c:
            return outcomes.finish_many(c, now(), items)

    # ---- message state ------------------------------------------------------------------

    def set_state(
        self,
        message_pk: int,
        state: MessageState | str,
        reason: str = "",
        *,
        plan_json: str | None = None,
        event_detail: str | None = None,
        only_from: Sequence[MessageState | str] | None = None,
    ) -> MessageRow | None:
        """Move a message to `state`; the new row, or None when it is not in `only_from` (or
        does not exist). A move the transition table refuses raises IllegalTransition."""
        with self.engine.begin() as c:
            return moves.set_state(c, now(), message_pk, state, reason, plan_json, event_detail, only_from)

    def schedule_retry(self, message_pk: int, reason: str, delay: float) -> int:
        """Retry a message later; returns its attempts so far. A message in a final state is
        never sent back (a failure on one of its copies is that copy's, not the message's):
        then nothing changes and 0 is returned."""
        with self.engine.begin() as c:
            return moves.schedule_retry(c, now(), message_pk, reason, delay)

    def retry_now(self, message_pks: Sequence[int]) -> None:
        """Make these messages' retries due now (`reconcile --fix`); their attempts so far stay."""
        with self.engine.begin() as c:
            c.execute(
                update(messages)
                .where(messages.c.id.in_(list(message_pks)), messages.c.state == MessageState.RETRYING.value)
                .values(next_attempt_at=now())
            )

    def reset_attempts(self, message_pk: int) -> MessageRow:
        with self.engine.begin() as c:
            c.execute(update(messages).where(messages.c.id == message_pk).values(attempts=0, next_attempt_at=None))
            return moves.message_row(c, message_pk)

    def add_event(self, message_pk: int, event_name: str, detail: str = "") -> None:
        with self.engine.begin() as c:
            c.execute(insert(events).values(message_pk=message_pk, at=now(), event=event_name, detail=detail))

    # ---- journal ------------------------------------------------------------------------

    def intent(self, message_pk: int, step: str) -> None:
        try:
            with self.engine.begin() as c:
                c.execute(insert(journal).values(message_pk=message_pk, step=step, intent_at=now()))
        except IntegrityError:
            pass  # the intent is already there from an earlier attempt

    def result(self, message_pk: int, step: str, value: Any) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(journal)
                .where(journal.c.message_pk == message_pk, journal.c.step == step)
                .values(result=json.dumps(value, default=str), done_at=now())
            )

    # ---- locations ----------------------------------------------------------------------

    def plan_location(
        self,
        location_pk: int,
        add: Sequence[str],
        remove: Sequence[str],
        move: str | None,
        state: LocationState | str = LocationState.WAITING,
    ) -> LocationRow:
        """Store the tags a copy's rules planned; it waits for its message's outcome."""
        return self._move_location(
            location_pk, None, state, tags_add=json.dumps(list(add)), tags_remove=json.dumps(list(remove)), move_to=move
        )  # type: ignore[return-value]

    def take_location(
        self, location_pk: int, from_states: Sequence[LocationState | str], to_state: LocationState | str
    ) -> LocationRow | None:
        """Guarded state change: the new row for the one caller that made it, None for the others."""
        return self._move_location(location_pk, from_states, to_state)

    def location_tagged(
        self, location_pk: int, tags: Sequence[str], state: LocationState | str, ref: SourceRef | None = None
    ) -> LocationRow:
        """A copy's write-back is done: the tags it has now, and where, if it was found elsewhere."""
        values: dict[str, Any] = {"tags": json.dumps(sorted(set(tags)))}
        if ref is not None:  # the write-back found it elsewhere (moved by the user, or by our `move`)
            values.update(folder=ref.folder, item_key=ref.item_key, uidvalidity=ref.uidvalidity)
        return self._move_location(location_pk, None, state, **values)  # type: ignore[return-value]

    def _move_location(
        self, location_pk: int, from_states: Sequence[LocationState | str] | None, to_state: LocationState | str, **values: Any
    ) -> LocationRow | None:
        with self.engine.begin() as c:
            return moves.move_location(c, now(), location_pk, from_states, to_state, **values)

    def reset_interrupted(self, owns: Owns | None = None) -> int:
        """At start: a copy left 'tagging' by a process that died mid-write waits again. With
        `owns`, only the copies in the mailboxes it owns (another gateway may be tagging its own)."""
        with self.engine.begin() as c:
            return moves.reset_interrupted(c, now(), owns)

    # ---- cursors and status -------------------------------------------------------------

    def set_cursor(self, source: str, account: str, folder: str, value: Any) -> None:
        self._upsert(
            cursors, {"source": source, "account": account, "folder": folder}, {"value": json.dumps(value), "updated_at": now()}
        )

    def set_status(self, key: str, value: dict[str, Any]) -> None:
        self._upsert(status, {"key": key}, {"value": json.dumps(value, default=str), "updated_at": now()})

    def set_statuses(self, values: dict[str, dict[str, Any]]) -> None:
        """Several status documents in one transaction: the running gateway's heartbeat writes
        every source's at once, one commit however many sources there are."""
        at = now()
        with self.engine.begin() as c:
            for key, value in values.items():
                self._upsert_in(c, status, {"key": key}, {"value": json.dumps(value, default=str), "updated_at": at})

    def _upsert(self, table: Any, keys: dict[str, Any], values: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            self._upsert_in(c, table, keys, values)

    @staticmethod
    def _upsert_in(c: Any, table: Any, keys: dict[str, Any], values: dict[str, Any]) -> None:
        cond = and_(*[table.c[k] == v for k, v in keys.items()])
        if not c.execute(update(table).where(cond).values(**values)).rowcount:
            try:
                with c.begin_nested():
                    c.execute(insert(table).values(**keys, **values))
            except IntegrityError:
                c.execute(update(table).where(cond).values(**values))

    # ---- data protection ----------------------------------------------------------------

    def forget_address(self, address_key: str) -> list[MessageRow]:
        """Erase what the ledger knows of every message with this address; return them as they were.

        The rows stay as tombstones (state `forgotten`, no subject, sender, plan or history)
        with their locations, so the copies still in a mailbox are not processed again and
        the person is not re-created from them (gateway.ledger.erasure).
        """
        with self.reader.connect() as c:
            pks = list(
                c.execute(select(message_addresses.c.message_pk).where(message_addresses.c.address_key == address_key)).scalars()
            )
        gone = [self.message(pk) for pk in pks]
        if pks:
            with self.engine.begin() as c:
                erasure.erase_messages(c, now(), pks)
        return gone
