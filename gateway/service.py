"""Wiring: config → ledger, CRM connector, rules, sources, pipeline workers; start and stop.

Each source runs in its own thread and only hands over spooled files; a bounded queue feeds
N pipeline workers, so a slow CRM does not stall the intake and memory stays flat.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.budget import Abandoned, Watch
from gateway.config import Config
from gateway.context import FILE_SOURCE
from gateway.crm.base import Connector, make_connector
from gateway.engine.facts import rule_facts
from gateway.errors import Retryable
from gateway.ledger import TERMINAL, Ledger
from gateway.ledger import work as ledger_work
from gateway.ledger.groupcommit import GroupCommit
from gateway.ledger.spool import Spool
from gateway.mailboxes.base import LedgerOnly, SourceEnv, SourceRef, Writeback
from gateway.mailboxes.registry import make_source
from gateway.pipeline import Pipeline
from gateway.rulesholder import RulesHolder, rule_files
from gateway.service_budget import BudgetKeeper

log = logging.getLogger("gateway.service")
_STOP = -1
# How long a stop waits for the sources, all of them together: a source stuck in a network
# call is left behind (what it fetched is durable or will be fetched again), so a stop ends
# well inside a service manager's patience (`docker stop` kills after 10 s).
SOURCE_STOP_GRACE = 5.0
_PUT_WAIT = 0.5  # a blocked enqueue looks this often whether the gateway is stopping


class Stopping(Retryable):
    """The gateway is stopping: a source's scan ends here; what it had not handed over is
    still in the mailbox (or not yet fetched) and is picked up at the next start. Retryable,
    so every source already treats it as "not now" and then sees the stop."""
ALONE = "alone"  # (ALONE, pk) in a queue: handle that copy in a batch of its own (gateway/budget.py)


def crm_connector(config: Config) -> Connector:
    crm = config.crm.model_copy(update={"url": config.db_url(config.crm.url)})
    return make_connector(crm)


class Gateway(BudgetKeeper):
    def __init__(self, config: Config, *, connector: Connector | None = None, rules: RulesHolder | None = None,
                 in_worker: bool = False) -> None:
        self.config = config
        self.in_worker = in_worker  # a worker process: only handles what the main process sends
        self.pool: Any = None
        self.ledger = Ledger(config.db_url(config.ledger.url))
        self.crm = connector or crm_connector(config)
        self.rules = rules or RulesHolder(config)
        self.spool = Spool(config.resolve(config.spool))
        self.sources: list[Any] = []
        self.writebacks: dict[str, Writeback] = {}
        env = SourceEnv(config=config, ledger=self.ledger, spool=self.spool, submit_bytes=self.submit_bytes,
                        submit_many=self.submit_many,
                        rule_facts=lambda: rule_facts(self.rules.current, config.base_dir))
        for src in config.sources:
            source, writeback = make_source(src, env)
            self.sources.append(source)
            self.writebacks[src.name] = writeback
        self.writebacks.setdefault(FILE_SOURCE, LedgerOnly())
        self.pipeline = Pipeline(config, self.ledger, self.crm, self.rules, self.spool, self.writebacks)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max(16, config.workers * config.batch * 2))
        self.watch = Watch()
        self.pipeline.on_stage = self._on_stage
        self._alone: set[int] = set()  # copies to handle one at a time: a batch of theirs went over budget or crashed
        self._threads: list[threading.Thread] = []
        self._budget_stop = threading.Event()
        self._inflight: set[int] = set()
        self._inflight_lock = threading.Lock()
        self._idle = threading.Condition(self._inflight_lock)
        self.on_processed: Callable[[int, str], None] | None = None
        self._backlog = False  # a non-blocking submit found the queue full: sweep the ledger
        self._copies_later = False  # a copy failed outside the pipeline: sweep again after a pause
        self._fresh: dict[int, Any] = {}  # rows just received, handed to the worker to save a read
        self._stopping = threading.Event()  # set by a stop: nothing more is queued
        self._intake: GroupCommit[tuple[SourceRef, bytes, int | None], int] = GroupCommit(
            lambda items: self.submit_many(items, block=False))
        self.processed = 0

    # ---- intake -------------------------------------------------------------------------

    def submit(self, ref: SourceRef, path: Path) -> None:
        """A source found a copy: make it durable (spool + ledger row), then queue it."""
        if self._stopping.is_set():
            raise Stopping("the gateway is stopping")
        spooled = self.spool.adopt(path)
        row = self.ledger.receive(ref, str(spooled))
        if row.spool_path != str(spooled):  # known already: a rescan, or another worker first
            self.spool.discard(str(spooled))
        if self.pool is None:
            self._fresh[row.id] = row
        self.enqueue(row.id)

    def submit_many(self, items: Sequence[tuple[SourceRef, bytes | Path, int | None]], *, block: bool = True) -> list[int]:
        """A batch of copies (bytes from a server, or files): spooled and made durable together,
        recorded in one ledger transaction, then queued. Items are (ref, raw or path, declared_size)."""
        if not items:
            return []
        if block and self._stopping.is_set():  # a scan or fetch (not an SMTP answer): end it here
            raise Stopping("the gateway is stopping")
        raws = [(i, raw) for i, (_, raw, _) in enumerate(items) if not isinstance(raw, Path)]
        spooled: list[Path | None] = [None] * len(items)
        for (i, _), path in zip(raws, self.spool.store_many([raw for _, raw in raws]), strict=False):
            spooled[i] = path
        for i, (_, raw, _) in enumerate(items):
            if isinstance(raw, Path):
                spooled[i] = self.spool.adopt(raw)
        rows = self.ledger.receive_many([(ref, str(spooled[i]), size) for i, (ref, _, size) in enumerate(items)])
        for i, row in enumerate(rows):
            if row.spool_path != str(spooled[i]):  # known already: a rescan, or another worker first
                self.spool.discard(str(spooled[i]))
            if self.pool is None:
                self._fresh[row.id] = row
        for row in rows:
            self.enqueue(row.id, block=block)
        return [row.id for row in rows]

    def submit_bytes(self, ref: SourceRef, raw: bytes, *, block: bool = False, declared_size: int | None = None) -> int:
        """Bytes from the network: durable (spool fsync + ledger row) before this returns.

        By default it never waits for queue space, so an SMTP client gets its answer at
        once; a copy that found the queue full stays open in the ledger and the sweep
        queues it later. `declared_size`: `raw` holds only the headers of a mail that big
        (over max_message_size, not fetched); it is quarantined with the reason."""
        if block:
            return self.submit_many([(ref, raw, declared_size)], block=True)[0]
        # Concurrent callers (SMTP sessions) share one fsync round and one ledger transaction.
        return self._intake.submit((ref, raw, declared_size))

    def enqueue(self, location_pk: int, *, block: bool = True) -> None:
        """Queue a copy for the workers; while stopping, or when the queue is full and `block`
        is false, it stays open in the ledger instead (a sweep or the next start queues it)."""
        with self._inflight_lock:
            if location_pk in self._inflight:
                self._fresh.pop(location_pk, None)  # the worker that has it reads its own row
                return
            self._inflight.add(location_pk)
        item: Any = location_pk
        if location_pk in self._alone:
            self._alone.discard(location_pk)
            item = (ALONE, location_pk)
        target = self.pool if self.pool is not None else self.queue
        try:
            while True:  # a blocked put gives up when a stop comes, never holding the stop up
                if self._stopping.is_set():
                    raise queue.Full
                try:
                    target.put(item, block=block, timeout=_PUT_WAIT if block else None)
                    break
                except queue.Full:
                    if not block:
                        raise
        except queue.Full:
            if isinstance(item, tuple):
                self._alone.add(location_pk)
            with self._inflight_lock:
                self._inflight.discard(location_pk)
            self._fresh.pop(location_pk, None)
            self._backlog = True

    def recover(self) -> int:
        """Queue every copy whose work a stop or a crash left unfinished, and due retries."""
        self.ledger.reset_interrupted()
        self._after_crash(ledger_work.crashed(self.ledger))
        pks = self.ledger.open_locations()
        for pk in pks:
            self.enqueue(pk)
        return len(pks) + self.queue_due_retries()

    def queue_due_retries(self) -> int:
        n = 0
        for message_pk in self.ledger.due_retries():
            primary = self.ledger.message(message_pk).primary_location
            if primary is not None:
                self.enqueue(primary)
                n += 1
        return n

    # ---- workers ------------------------------------------------------------------------

    def _worker(self) -> None:
        me = threading.current_thread().name
        while True:
            pks = take_batch(self.queue, self.config.batch)
            work, alone = split_batch(pks)
            self.watch.batch(me, work + alone)
            try:
                for group in ([work] if work else []) + [[pk] for pk in alone]:
                    for pk, state in self._handle_many(group).items():
                        self.processed += 1
                        if self.on_processed:
                            self.on_processed(pk, state)
            except Abandoned:  # the watchdog gave this batch back to the queue and started another worker
                return
            finally:
                self.watch.done(me)
                if not self.watch.is_abandoned(me):
                    with self._inflight_lock:
                        self._inflight.difference_update(work + alone)
                        self._idle.notify_all()
                for _ in pks:
                    self.queue.task_done()
            if self.watch.is_abandoned(me) or pks[-1] == _STOP:
                return

    def _handle(self, pk: int) -> str:
        return self._handle_many([pk])[pk]

    def _handle_many(self, pks: list[int]) -> dict[int, str]:
        """Handle a batch of copies; each one's state, a failure turned into a retry."""
        if not pks:
            return {}
        try:  # a crash from here on leaves these marked: the next start counts it (gateway/ledger/work.py)
            ledger_work.started(self.ledger, pks)
        except Exception as exc:
            log.warning("locations %s: not marked in hand: %s", pks, exc)
        try:
            outcomes = self.pipeline.handle_many([(pk, self._fresh.pop(pk, None)) for pk in pks])
        except Exception as exc:  # a bug outside any one message: each is retried on its own
            outcomes = {pk: exc for pk in pks}
        try:
            ledger_work.finished(self.ledger, pks)
        except Exception as exc:
            log.warning("locations %s: not unmarked: %s", pks, exc)
        states: dict[int, str] = {}
        for pk in pks:
            outcome = outcomes.get(pk) or RuntimeError("no outcome for this copy")
            if isinstance(outcome, str):
                states[pk] = outcome
            elif isinstance(outcome, Retryable):  # the ledger itself was away (locked, unreachable): try again
                log.warning("location %s: %s; will retry", pk, outcome)
                self._retry_location(pk, str(outcome))
                states[pk] = "retrying"
            else:  # a bug must not lose the message: keep it, retry, and say so
                log.error("location %s: unexpected error", pk, exc_info=outcome)
                self._retry_location(pk, f"internal error: {type(outcome).__name__}: {outcome}")
                states[pk] = "retrying"
        return states

    def _retry_location(self, pk: int, reason: str) -> None:
        """A failure outside the pipeline's own handling. The message is retried when this copy
        is the one doing its work; a failure of another copy (tagging it, say) or before the
        copy was linked leaves the copy open, and the sweep hands it over again later."""
        try:
            loc = self.ledger.location(pk)
            row = self.ledger.message(loc.message_pk) if loc.message_pk is not None else None
            if row is not None and row.primary_location == pk and row.state not in TERMINAL:
                self.ledger.schedule_retry(row.id, reason, self.config.retry.base_delay)
            else:
                self._copies_later = True
        except Exception:
            log.exception("location %s: could not record the retry; it stays open for the next start", pk)

    def start_workers(self) -> list[threading.Thread]:
        self._stopping.clear()
        if self.config.processes > 1:
            from gateway.errors import ConfigError
            from gateway.workers import ProcessPool

            if self.config.path is None:
                raise ConfigError("processes > 1 needs a config file the worker processes can read")
            self.pool = ProcessPool(self.config.path, self.config.processes, on_done=self._done, on_lost=self._lost,
                                    batch=self.config.batch,
                                    log_level=logging.getLevelName(logging.getLogger().level), watch=self.watch)
            self.pool.start()
            self._start_budget()
            return []
        self._threads = [threading.Thread(target=self._worker, name=f"worker-{i}", daemon=True)
                         for i in range(self.config.workers)]
        for t in self._threads:
            t.start()
        self._start_budget()
        return self._threads  # the same list: a worker the watchdog replaces is replaced in it

    def stop_workers(self, threads: list[threading.Thread]) -> None:
        """Each worker finishes the batch in hand; what is still queued is dropped from the
        queue and stays open in the ledger for the next start (draining it could take minutes)."""
        self._stopping.set()
        if self.pool is not None:
            self.pool.stop()
            self.pool = None
        else:
            self._drop_queued()
            for _ in threads:
                self.queue.put(_STOP)
            # The watchdog runs on until the workers end: one stuck past its budget is given up
            # on (its message quarantined) instead of holding the stop up for ever.
            while True:  # `threads` is the list the watchdog edits when it replaces a worker
                with self._inflight_lock:
                    live = [t for t in threads if t.is_alive() and not self.watch.is_abandoned(t.name)]
                if not live:
                    break
                live[0].join(timeout=1.0)
        self._budget_stop.set()
        with self._inflight_lock:
            self._inflight.clear()
            self._fresh.clear()
            self._idle.notify_all()

    def _drop_queued(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return
            self.queue.task_done()

    def _done(self, pk: int, state: str) -> None:
        """A worker process finished a location."""
        self.processed += 1
        if self.on_processed:
            self.on_processed(pk, state)
        with self._inflight_lock:
            self._inflight.discard(pk)
            self._idle.notify_all()

    def _lost(self, pk: int) -> None:
        """A worker died with this location in hand: queue it again (the journal makes it safe).
        A worker process that died while handling it counts as a crash of it."""
        with self._inflight_lock:
            self._inflight.discard(pk)
        try:
            if pk in self._after_crash(ledger_work.crashed(self.ledger, [pk])):
                self._done(pk, "quarantined")
                return
        except Exception:
            log.exception("location %s: crash not counted", pk)
        self.enqueue(pk, block=False)

    def wait_idle(self, stop: threading.Event | None = None) -> None:
        with self._idle:
            while self._inflight and not (stop and stop.is_set()):
                self._idle.wait(0.2)

    # ---- run ----------------------------------------------------------------------------

    def run_once(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Process what is there now in every source (and what a crash left open), then return."""
        done = {"n": 0}
        total = {"n": 0}

        def count(_pk: int, _state: str) -> None:
            done["n"] += 1
            if progress:
                progress(done["n"], max(total["n"], done["n"]))

        self.on_processed = count
        threads = self.start_workers()
        try:
            total["n"] = sum(getattr(s, "pending_count", lambda: 0)() for s in self.sources)
            total["n"] += self.recover()
            if progress:
                progress(0, total["n"])
            for source in self.sources:
                source.scan_once(self.submit)
            self.wait_idle()
            while self._backlog:  # copies an intake recorded while the queue was full
                self._backlog = False
                for pk in self.ledger.open_locations():
                    self.enqueue(pk)
                self.wait_idle()
        finally:
            self.stop_workers(threads)
            self.write_status(running=False)
        return self.summary()

    def run(self, stop: threading.Event) -> None:
        threads = self.start_workers()
        self.recover()
        source_threads = [threading.Thread(target=self._run_source, args=(s, stop), name=f"source-{s.name}", daemon=True)
                          for s in self.sources]
        for t in source_threads:
            t.start()
        helpers = [threading.Thread(target=self._retry_loop, args=(stop,), name="retries", daemon=True),
                   threading.Thread(target=self._watch_rules, args=(stop,), name="rules", daemon=True)]
        if self.config.web is not None:
            helpers.append(threading.Thread(target=self._serve_web, args=(stop,), name="web", daemon=True))
        for t in helpers:
            t.start()
        web = f"http://{self.config.web.listen}/" if self.config.web is not None else "off"
        log.info("gateway running: %d sources, %d workers, %d rules; config %s; status page %s", len(self.sources),
                 self.config.workers, len(self.rules.current.rules), self.config.path, web)
        while not stop.wait(2.0):
            self.write_status()
        # The sources saw `stop` together; the workers end meanwhile, each after its batch in hand.
        self.stop_workers(threads)
        join_together(source_threads, SOURCE_STOP_GRACE)
        self.write_status(running=False)
        log.info("gateway stopped")

    def _run_source(self, source: Any, stop: threading.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                source.run(self.submit, stop)
                return
            except Stopping:
                return
            except Exception as exc:
                source.last_error = str(exc)
                log.exception("source %s failed; restarting in %.0fs", source.name, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 300)

    def _serve_web(self, stop: threading.Event) -> None:
        from gateway.web.app import serve

        try:
            serve(self, self.config.web.listen, stop)  # type: ignore[union-attr]
        except Exception:
            log.exception("status page on %s could not start", self.config.web.listen)  # type: ignore[union-attr]

    def _retry_loop(self, stop: threading.Event) -> None:
        last_copy_sweep = time.monotonic()
        while not stop.wait(1.0):
            try:
                self.queue_due_retries()
                copies_due = self._copies_later and time.monotonic() - last_copy_sweep >= self.config.retry.base_delay
                if (self._backlog and self.queue.qsize() < self.queue.maxsize // 2) or copies_due:
                    self._backlog = False
                    if copies_due:
                        self._copies_later, last_copy_sweep = False, time.monotonic()
                    for pk in self.ledger.open_locations():
                        self.enqueue(pk, block=False)
            except Exception:
                log.exception("retry scheduler")

    def _watch_rules(self, stop: threading.Event) -> None:
        """Reload when a rule file changes (and on SIGHUP, through `reload_rules`)."""
        import watchfiles

        folders = sorted({str(self.config.resolve(p).parent) for p in self.config.rules})
        try:
            for _changes in watchfiles.watch(*folders, stop_event=stop, debounce=200, raise_interrupt=False,
                                             watch_filter=lambda _c, p: p.endswith((".yaml", ".yml"))):
                self.reload_rules()
        except Exception as exc:
            log.warning("rule files not watched (%s): reload with SIGHUP", exc)

    def reload_rules(self) -> bool:
        ok = self.rules.reload()
        if ok and self.pool is not None:
            self.pool.reload()
        self.ledger.set_status("rules", self.rules.status())
        return ok

    # ---- status -------------------------------------------------------------------------

    def write_status(self, running: bool = True) -> None:
        """The status document, and the service's heartbeat (`at`): `status` tells a running
        gateway from a stopped or killed one by `running`, the pid and the heartbeat's age."""
        try:
            for s in self.sources:
                self.ledger.set_status(f"source:{s.name}", s.status())
            self.ledger.set_status("rules", self.rules.status())
            self.ledger.set_status("service", {"pid": _pid(), "host": socket.gethostname(), "running": running,
                                               "workers": self.config.workers, "queue": self.queue.qsize(),
                                               "at": datetime.now(UTC).isoformat()})
        except Exception as exc:
            log.warning("status not written: %s", exc)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for states in self.ledger.counts().values():
            for state, n in states.items():
                out[state] = out.get(state, 0) + n
        return out

    def close(self) -> None:
        self.crm.close()
        self.ledger.close()


def split_batch(items: Sequence[Any]) -> tuple[list[int], list[int]]:
    """A batch's copies to handle together, and those to handle one at a time."""
    work = [i for i in items if isinstance(i, int) and i != _STOP]
    alone = [i[1] for i in items if isinstance(i, tuple) and i[0] == ALONE]
    return work, alone


def take_batch(q: Any, limit: int, alive: Callable[[], bool] | None = None) -> list[Any]:
    """The next item of a queue (waiting for it), then what else is queued, up to `limit`
    items: a batch whose writes share transactions. A control item (anything not an int: a
    stop, a reload) ends the batch, so it is never taken past. `alive`: asked every 2 s while
    waiting; when it says no, the batch is a stop."""
    while True:
        try:
            items = [q.get(timeout=2.0) if alive is not None else q.get()]
            break
        except queue.Empty:
            if alive is not None and not alive():
                return [None]
    while len(items) < limit and isinstance(items[-1], int) and items[-1] != _STOP:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            break
    return items


def join_together(threads: Sequence[threading.Thread], grace: float) -> list[threading.Thread]:
    """Join threads that were all told to stop at once, with one deadline for all of them
    (not `grace` each: a few stuck ones would add up). The ones still running are returned."""
    deadline = time.monotonic() + grace
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    left = [t for t in threads if t.is_alive()]
    if left:
        log.warning("stopping without waiting longer for %d source(s): %s", len(left),
                    ", ".join(t.name.removeprefix("source-") for t in left))
    return left


def _pid() -> int:
    import os

    return os.getpid()


def file_ref(path: Path, raw: bytes, *, source: str | None, folder: str, mailbox: str) -> SourceRef:
    """`process FILE.eml`: the file's content names the copy, so processing it again is a no-op."""
    return SourceRef(source or FILE_SOURCE, mailbox, folder, hashlib.sha256(raw).hexdigest())


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


__all__ = ["Gateway", "crm_connector", "file_ref", "rule_files", "wait_until"]
