"""Worker processes: the pipeline on several cores.

The pipeline is CPU-bound Python (parsing, rules, SQL statements), so threads share one core.
With `processes: N` the sources stay in the main process and hand location ids to N worker
processes, each with its own ledger and CRM connections. Nothing else is shared: claims,
journal and copies are settled in the database, and creates for one address are serialised
by `gateway.ledger.locks.AddressLocks`, so workers in different processes are as safe as threads.

Each worker reads its own queue, and the main process dispatches and remembers what every
worker holds: a worker that dies (even blocked in a read, which would leave a shared queue's
lock held) is started again on a fresh queue and what it held is queued again; its journal
makes the replay safe. A worker holds up to two batches (`batch` in the config): one in hand,
whose writes share transactions, and the next one waiting.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

from gateway.pipeline.budget import Watch
from gateway.runtime.loop import Alone, Control, Copy
from gateway.runtime.worker_process import Held, Result, StageReport, worker_main

log = logging.getLogger("gateway.workers")
_BATCHES_PER_WORKER = 2  # a batch in hand and one waiting: a worker never idles for the next


# What every worker imports, loaded once in the fork server (see gateway/runtime/preload.py).
_PRELOAD = ["__main__", "gateway.runtime.preload"]


def _context() -> Any:
    """No plain fork: the parent has threads and open connections. A fork server is a fresh
    process that imports the gateway once and forks each worker from that clean state; where
    there is none (Windows), spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class ProcessPool:
    def __init__(
        self,
        config_path: Path,
        n: int,
        *,
        on_done: Callable[[int, str], None],
        on_lost: Callable[[int], None],
        log_level: str = "INFO",
        batch: int = 1,
        watch: Watch | None = None,
    ) -> None:
        self._ctx = _context()
        self.n = n
        self.per_worker = _BATCHES_PER_WORKER * batch
        self.config_path = str(config_path)
        self.log_level = log_level
        self.pending: queue.Queue[Copy | None] = queue.Queue(maxsize=n * self.per_worker)  # in the main process only
        # One result pipe per worker process, never a queue they share: a worker that dies
        # while writing (a crash, a kill) would leave a shared queue's write lock held, and
        # every other worker's results would wait behind it for ever. A dead worker's pipe only
        # ends (EOF, or a torn last message) and is dropped; its successor gets a new one.
        self.readers: list[Any] = []
        self._collect_end = threading.Event()
        # A worker ends when the main process is gone, even killed: it waits on its queue only
        # while this pipe's write end, which the main process alone holds, is open.
        self._lifeline, self._lifeline_w = self._ctx.Pipe(duplex=False)
        self.inboxes: list[Any] = [None] * n
        self.procs: list[Any] = [None] * n
        self.holding: list[set[int]] = [set() for _ in range(n)]
        self.on_done = on_done
        self.on_lost = on_lost
        self.watch = watch or Watch()
        self._cv = threading.Condition()
        self._stopping = threading.Event()
        self._halt = self._ctx.Event()  # tells the workers to end after the batch in hand
        self._starter = threading.Thread(target=self._start_all, name="worker-start", daemon=True)
        self._threads = [
            threading.Thread(target=self._dispatch, name="worker-dispatch", daemon=True),
            threading.Thread(target=self._collect, name="worker-results", daemon=True),
        ]

    def start(self) -> None:
        """The queues now, the processes in the background: the first start waits for the fork
        server to import the gateway (~0.6 s), and meanwhile the sources fetch and queue."""
        for i in range(self.n):
            self.inboxes[i] = self._ctx.Queue()
        self._starter.start()
        for t in self._threads:
            t.start()

    def _start_all(self) -> None:
        for i in range(self.n):
            if self._stopping.is_set():
                return
            try:
                self._spawn(i, self.inboxes[i])
            except Exception:  # the collector tries again, as for a worker that died
                log.exception("could not start worker %d", i)

    def _spawn(self, i: int, inbox: Any = None) -> None:
        # a fresh queue unless given: a dead reader may have left the old one locked
        self.inboxes[i] = inbox if inbox is not None else self._ctx.Queue()
        reader, writer = self._ctx.Pipe(duplex=False)
        p = self._ctx.Process(
            target=worker_main,
            name=f"crm-gateway-worker-{i}",
            daemon=True,
            args=(
                self.config_path,
                i,
                self.inboxes[i],
                writer,
                self.log_level,
                dict(os.environ),
                self._lifeline,
                self._halt,
            ),
        )
        p.start()
        writer.close()  # the worker holds the only write end: its exit is this pipe's EOF
        self.procs[i] = p
        with self._cv:
            self.readers.append(reader)

    def put(self, item: Copy, block: bool = True, timeout: float | None = None) -> None:
        self.pending.put(item, block=block, timeout=timeout)  # queue.Full when full (not blocking, or past timeout)

    def reload(self) -> None:
        with self._cv:
            for inbox in self.inboxes:
                inbox.put(Control.RELOAD)

    def _dispatch(self) -> None:
        while True:
            pk = self.pending.get()
            if pk is None:
                return
            with self._cv:
                while True:
                    free = [i for i in range(self.n) if len(self.holding[i]) < self.per_worker]
                    if free:
                        break
                    self._cv.wait(0.5)
                i = min(free, key=lambda k: len(self.holding[k]))
                self.holding[i].add(pk.pk if isinstance(pk, Alone) else pk)
                self.inboxes[i].put(pk)

    def _collect(self) -> None:
        next_check = time.monotonic() + 0.5
        while True:
            with self._cv:
                readers = list(self.readers)
            ending = self._collect_end.is_set()  # read before waiting: results sent before it come first
            if ending and not readers:
                return
            ready: list[Any] = list(mp_connection.wait(readers, timeout=0.5)) if readers else []
            if not readers:
                time.sleep(0.5)
            for reader in ready:
                try:
                    item = reader.recv()
                except (EOFError, OSError):  # the worker ended: nothing more comes this way
                    self._drop(reader)
                    continue
                except Exception:  # a worker killed mid-write left a torn message: its pipe goes with it
                    log.exception("unreadable worker result")
                    self._drop(reader)
                    continue
                self._take(item)
            if ending and not ready:  # `stop`: every worker has ended and its results are read
                return
            if time.monotonic() >= next_check:  # also under load: a death must not wait for a lull
                next_check = time.monotonic() + 0.5
                self._check_alive()

    def _drop(self, reader: Any) -> None:
        with self._cv:
            if reader in self.readers:
                self.readers.remove(reader)
        with contextlib.suppress(OSError):
            reader.close()

    def _take(self, item: object) -> None:
        if isinstance(item, (StageReport, Held)) and self.watch.is_abandoned(item.key):
            pass  # a report the killed worker sent before it was killed
        elif isinstance(item, StageReport):
            self.watch.enter(item.key, item.pks, item.stage)
        elif isinstance(item, Held):
            if item.pks:
                self.watch.batch(item.key, item.pks)
            else:
                self.watch.done(item.key)
        elif isinstance(item, Result):
            with self._cv:
                self.holding[item.index].discard(item.pk)
                self._cv.notify_all()
            self.on_done(item.pk, item.state)

    def _check_alive(self) -> None:
        if self._stopping.is_set() or self._starter.is_alive():
            return
        for i, p in enumerate(self.procs):
            if p is not None and p.is_alive():
                continue
            with self._cv:
                if self._stopping.is_set():  # `stop` owns the workers now
                    return
                if p is not None:
                    self.watch.gone((i, p.pid))
                    held = sorted(self.holding[i])
                    log.error(
                        "worker %d died (exit code %s)%s; starting it again",
                        i,
                        p.exitcode,
                        f" holding locations {held}" if held else "",
                    )
                lost = self._restart(i)
            for pk in lost:
                self.on_lost(pk)

    def give_up(self, key: object) -> list[int]:
        """The watchdog's word for `abandon`: its key is (index, pid)."""
        return self.abandon(key[0])  # type: ignore[index]

    def abandon(self, i: int) -> list[int]:
        """The watchdog gave up on worker i (over budget): kill it and start it again. What it
        held (the batch in hand and the one waiting) is returned, for the caller to hand back;
        its late reports are ignored (the key had its pid)."""
        with self._cv:
            if self._stopping.is_set():
                return []
            return self._restart(i)

    def _restart(self, i: int) -> list[int]:
        """Worker i is dead or given up on: make sure it is gone and start another (under
        `_cv`). Returns what it held, for the caller to hand back."""
        held, self.holding[i] = sorted(self.holding[i]), set()
        p = self.procs[i]
        if p is not None:
            _make_sure_gone(p)
        try:
            self._spawn(i)
        except Exception:
            log.exception("could not start worker %d", i)
            self.procs[i] = None
        self._cv.notify_all()
        return held

    def stop(self, grace: float = 60.0) -> None:
        """Each worker finishes the batch in hand and ends; what is still pending, or queued to
        a worker behind that batch, stays open in the ledger for the next start. The workers
        end together: one deadline of `grace` seconds for all, then the late ones are ended."""
        self._stopping.set()
        self._halt.set()
        self._starter.join(timeout=60)
        with self._cv:  # no worker is started again after this (`_check_alive` looks under the lock)
            procs, inboxes = list(self.procs), list(self.inboxes)
        while True:
            try:
                self.pending.get_nowait()
            except queue.Empty:
                break
        self.pending.put(None)  # the dispatcher ends
        self._threads[0].join(timeout=5)
        for inbox in inboxes:
            if inbox is not None:
                inbox.put(Control.STOP)
                inbox.cancel_join_thread()  # what a worker leaves unread must not hold up this process's exit
        deadline = time.monotonic() + grace
        for p in procs:
            if p is not None:
                p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p is not None and p.is_alive():
                log.warning("worker %s did not finish its batch in %.0f s; ending it", p.name, grace)
                p.terminate()
                p.join(timeout=5)
        self._collect_end.set()  # the collector ends once what the workers sent is read
        self._threads[1].join(timeout=5)


def _make_sure_gone(p: Any) -> None:
    """With a fork server a worker's exit code comes through the server: if the server died,
    a live worker reads as ended. Kill it by its pid before it is replaced, so its work is
    never done by two processes at once and it does not linger."""
    with contextlib.suppress(OSError):  # gone already (reaped by the fork server)
        os.kill(p.pid, signal.SIGKILL)
