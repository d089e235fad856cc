"""Worker processes: the pipeline on several cores.

The pipeline is CPU-bound Python (parsing, rules, SQL statements), so threads share one core.
With `processes: N` the sources stay in the main process and hand location ids to N worker
processes, each with its own ledger and CRM connections. Nothing else is shared: claims,
journal and copies are settled in the database, and creates for one address are serialised
by `gateway.locks.AddressLocks`, so workers in different processes are as safe as threads.
A worker that dies is started again and the message it had in hand is queued again (its
journal makes the replay safe).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("gateway.workers")


def _worker_main(config_path: str, index: int, work: Any, results: Any, control: Any, log_level: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    from gateway import logs
    from gateway.config import load_config
    from gateway.service import Gateway

    logs.setup(log_level)
    gw = Gateway(load_config(config_path), in_worker=True)
    try:
        while True:
            try:
                if control.get_nowait() == "reload":
                    gw.rules.reload()
            except queue.Empty:
                pass
            pk = work.get()
            if pk is None:
                return
            results.put(("start", index, pk))
            state = gw._handle(pk)
            results.put(("done", index, pk, state))
    finally:
        gw.close()


class ProcessPool:
    def __init__(self, config_path: Path, n: int, *, on_done: Callable[[int, str], None],
                 on_lost: Callable[[int], None], log_level: str = "INFO") -> None:
        self._ctx = mp.get_context("spawn")  # no fork: the parent has threads and open connections
        self.n = n
        self.config_path = str(config_path)
        self.log_level = log_level
        self.work: Any = self._ctx.Queue(maxsize=n * 4)
        self.results: Any = self._ctx.Queue()
        self.controls = [self._ctx.Queue() for _ in range(n)]
        self.procs: list[Any] = [None] * n
        self.current: list[int | None] = [None] * n
        self.on_done = on_done
        self.on_lost = on_lost
        self._stopping = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="worker-results", daemon=True)

    def start(self) -> None:
        for i in range(self.n):
            self._spawn(i)
        self._collector.start()

    def _spawn(self, i: int) -> None:
        p = self._ctx.Process(target=_worker_main, name=f"crm-gateway-worker-{i}", daemon=True,
                              args=(self.config_path, i, self.work, self.results, self.controls[i], self.log_level))
        p.start()
        self.procs[i] = p

    def put(self, pk: int, block: bool = True) -> None:
        self.work.put(pk, block=block)  # queue.Full when not blocking and full

    def reload(self) -> None:
        for c in self.controls:
            c.put("reload")

    def stop(self) -> None:
        """Each worker finishes the message in hand; what is still queued stays open in the ledger."""
        self._stopping.set()
        while True:  # drop what no worker has taken yet: the ledger has it as open work
            try:
                self.work.get_nowait()
            except queue.Empty:
                break
        for _ in self.procs:
            self.work.put(None)
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
        self._collector.join(timeout=5)

    def _collect(self) -> None:
        while True:
            try:
                msg = self.results.get(timeout=0.5)
            except queue.Empty:
                if self._stopping.is_set() and not any(p.is_alive() for p in self.procs):
                    return
                self._check_alive()
                continue
            kind, i, pk = msg[0], msg[1], msg[2]
            if kind == "start":
                self.current[i] = pk
            else:
                self.current[i] = None
                self.on_done(pk, msg[3])

    def _check_alive(self) -> None:
        if self._stopping.is_set():
            return
        for i, p in enumerate(self.procs):
            if p is not None and not p.is_alive():
                lost = self.current[i]
                self.current[i] = None
                log.error("worker %d died (exit code %s)%s; starting it again", i, p.exitcode,
                          f" while handling location {lost}" if lost is not None else "")
                self._spawn(i)
                if lost is not None:
                    self.on_lost(lost)
