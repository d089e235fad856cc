"""Intake: a copy a source found becomes durable (spool + ledger row), then queued for the workers.

Also the bookkeeping of what is in flight: a copy is queued at most once at a time, whoever
offers it (a source, the retry sweep, a crash replay), and `wait_idle` knows when all of it
is done. A bounded queue feeds the workers, so a slow CRM does not stall the intake and
memory stays flat; what does not fit stays open in the ledger and a sweep queues it later.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from gateway.config import Config
from gateway.errors import Retryable
from gateway.ledger import Ledger
from gateway.ledger.groupcommit import GroupCommit
from gateway.ledger.spool import Spool
from gateway.mailboxes.base import FolderRef, Found, SourceRef
from gateway.runtime.loop import Alone, Copy, Item

log = logging.getLogger("gateway.service")
_PUT_WAIT = 0.5  # a blocked enqueue looks this often whether the gateway is stopping


class Stopping(Retryable):
    """The gateway is stopping: a source's scan ends here; what it had not handed over is
    still in the mailbox (or not yet fetched) and is picked up at the next start. Retryable,
    so every source already treats it as "not now" and then sees the stop."""


class Sink(Protocol):
    """Where queued copies go: the worker threads' queue, or the process pool's."""

    def put(self, item: Copy, block: bool = True, timeout: float | None = None) -> None: ...


class Intake:
    def __init__(self, config: Config, ledger: Ledger, spool: Spool) -> None:
        self.ledger = ledger
        self.spool = spool
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=max(16, config.workers * config.batch * 2))
        self.sink: Sink = self.queue  # the process pool's while worker processes run
        self.stopping = threading.Event()  # set by a stop: nothing more is queued
        self.backlog = False  # an enqueue found the queue full: a sweep of the ledger queues the rest
        self.processed = 0
        self.on_processed: Callable[[int, str], None] | None = None
        self._alone: set[int] = set()  # copies to handle one at a time: a batch of theirs went over budget or crashed
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._fresh: dict[int, Any] = {}  # rows just received, handed to a worker thread to save a read
        self._grouped: GroupCommit[Found, int] = GroupCommit(lambda found: self.hand_over(found, wait=False))
        # whether this gateway holds a mailbox: the lease keeper's answer (gateway/runtime/leases.py)
        # once the gateway runs; yes for a command that handles mail now
        self.holder: Callable[[str, str], bool] = lambda _source, _account: True

    # ---- from the sources: the intake port (gateway.mailboxes.base.IntakePort) ----------

    def hand_over(self, found: Sequence[Found], *, wait: bool = True) -> list[int]:
        """Copies a source found (bytes from a server, or files): spooled and made durable
        together, recorded in one ledger transaction, then queued. `wait`: for queue room, and
        refuse (a scan or fetch ends here) once stopping; without it a copy that finds the
        queue full stays open in the ledger and a sweep queues it later."""
        if not found:
            return []
        if wait and self.stopping.is_set():
            raise Stopping("the gateway is stopping")
        raws = [(i, f.raw) for i, f in enumerate(found) if not isinstance(f.raw, Path)]
        spooled: list[Path | None] = [None] * len(found)
        for (i, _), path in zip(raws, self.spool.store_many([raw for _, raw in raws]), strict=False):
            spooled[i] = path
        for i, f in enumerate(found):
            if isinstance(f.raw, Path):
                spooled[i] = self.spool.adopt(f.raw)
        rows = self.ledger.receive_many([(f.ref, str(spooled[i]), f.declared_size) for i, f in enumerate(found)])
        for i, row in enumerate(rows):
            if row.spool_path != str(spooled[i]):  # known already: a rescan, or another worker first
                self.spool.discard(str(spooled[i]))
            self._keep_fresh(row)
        for row in rows:
            self.enqueue(row.id, block=wait)
        return [row.id for row in rows]

    def hand_over_now(self, found: Found) -> int:
        """Bytes from the network (SMTP): durable (spool fsync + ledger row) before this returns,
        never waiting for queue room, so the client gets its answer at once. Concurrent callers
        share one fsync round and one ledger transaction."""
        return self._grouped.submit(found)

    def cursor(self, ref: FolderRef) -> dict[str, Any] | None:
        return self.ledger.get_cursor(ref.source, ref.account, ref.folder)

    def advance(self, ref: FolderRef, cursor: dict[str, Any]) -> None:
        self.ledger.set_cursor(ref.source, ref.account, ref.folder, cursor)

    def is_known(self, ref: SourceRef) -> bool:
        return self.ledger.location_at(ref) is not None

    def known_keys(self, ref: FolderRef) -> set[str]:
        return self.ledger.known_keys(ref.source, ref.account, ref.folder)

    def seen_in(self, message_id: str, ref: FolderRef) -> bool:
        for row in self.ledger.find_messages(message_id):
            for loc in self.ledger.locations_of(row.id):
                if (loc.ref.source, loc.ref.account, loc.ref.folder) == (ref.source, ref.account, ref.folder):
                    return True
        return False

    def holds(self, source: str, account: str) -> bool:
        return self.holder(source, account)

    def record(self, ref: SourceRef, raw: bytes, declared_size: int | None = None) -> int:
        """A copy handed in by a person (`process FILE.eml`, a mail filed from a mailbox):
        recorded, not queued, for the caller to handle now. A copy known already keeps its
        location (and its spooled file). `declared_size`: `raw` is only the headers of a mail
        this big."""
        if self.ledger.location_at(ref):
            return self.ledger.receive(ref, None).id
        return self.ledger.receive(ref, str(self.spool.store(raw)), declared_size).id

    def _keep_fresh(self, row: Any) -> None:
        if self.sink is self.queue:  # a worker process reads its own rows
            self._fresh[row.id] = row

    # ---- to the workers -----------------------------------------------------------------

    def enqueue(self, location_pk: int, *, block: bool = True) -> None:
        """Queue a copy for the workers; while stopping, or when the queue is full and `block`
        is false, it stays open in the ledger instead (a sweep or the next start queues it)."""
        with self._lock:
            if location_pk in self._inflight:
                self._fresh.pop(location_pk, None)  # the worker that has it reads its own row
                return
            self._inflight.add(location_pk)
        self._put(location_pk, block)

    def requeue(self, location_pk: int) -> None:
        """A copy a worker lost (it died, or was given up on) goes back to the queue. It leaves
        the flight without waking `wait_idle`, which looks again within 0.2 s anyway."""
        with self._lock:
            self._inflight.discard(location_pk)
        self.enqueue(location_pk, block=False)

    def _put(self, location_pk: int, block: bool) -> None:
        item: Copy = location_pk
        if location_pk in self._alone:
            self._alone.discard(location_pk)
            item = Alone(location_pk)
        try:
            while True:  # a blocked put gives up when a stop comes, never holding the stop up
                if self.stopping.is_set():
                    raise queue.Full
                try:
                    self.sink.put(item, block=block, timeout=_PUT_WAIT if block else None)
                    break
                except queue.Full:
                    if not block:
                        raise
        except queue.Full:
            if isinstance(item, Alone):
                self._alone.add(location_pk)
            self._fresh.pop(location_pk, None)
            self.backlog = True  # before it leaves the flight: whoever waits for idle then sweeps
            with self._lock:
                self._inflight.discard(location_pk)

    def take_fresh(self, pk: int) -> Any:
        return self._fresh.pop(pk, None)

    def handle_alone(self, pks: Sequence[int]) -> None:
        """These copies go in batches of their own from now on."""
        self._alone.update(pks)

    # ---- back from the workers ----------------------------------------------------------

    def count(self, pk: int, state: str) -> None:
        self.processed += 1
        if self.on_processed:
            self.on_processed(pk, state)

    def release(self, pks: Sequence[int]) -> None:
        """These copies left the workers (done, given back, or lost): they may be queued again."""
        with self._lock:
            self._inflight.difference_update(pks)
            self._idle.notify_all()

    def done(self, pk: int, state: str) -> None:
        self.count(pk, state)
        self.release([pk])

    def wait_idle(self, stop: threading.Event | None = None) -> None:
        with self._idle:
            while self._inflight and not (stop and stop.is_set()):
                self._idle.wait(0.2)

    def drop_queued(self) -> None:
        """What the worker threads have not taken stays open in the ledger for the next start."""
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return

    def forget_inflight(self) -> None:
        """The workers have ended: nothing is in flight any more."""
        with self._lock:
            self._inflight.clear()
            self._fresh.clear()
            self._idle.notify_all()
