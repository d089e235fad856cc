"""One selector loop per process for every idling IMAP connection, and a small pool for the work.

Watching a folder costs a socket, not a thread: a connection in IDLE is registered with the
loop (`selectors`), which does nothing until the server writes to it (news, a keep-alive, or
EOF) or a timer comes due (IDLE renewal, a reconnect after its back-off, the next poll).
Whatever must block — logging in, scanning, ending IDLE — runs on a fixed pool of
`WATCH_THREADS` daemon threads, so a process watching 4,000 folders runs the same dozen
threads as one watching four. The loop only ever waits, so a slow server or a slow ledger
holds up one pool thread, never the other connections' notices.

Only the loop thread touches the selector: the others ask it through `call_soon` (a queue
and a self-pipe that wakes it).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.mailboxes.base import WATCH_THREADS

log = logging.getLogger("gateway.imap")
Job = Callable[[], None]


@dataclass(order=True)
class Timer:
    at: float
    seq: int
    job: Job = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Watcher:
    def __init__(self, threads: int = WATCH_THREADS) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._timers: list[Timer] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.threads = threads
        _raise_file_limit()
        threading.Thread(target=self._loop, name="imap-watch", daemon=True).start()
        for i in range(threads):
            threading.Thread(target=self._work, name=f"imap-scan-{i}", daemon=True).start()

    # ---- from any thread ------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Run `job` on the pool."""
        self._jobs.put(job)

    def later(self, delay: float, job: Job) -> Timer:
        """Run `job` on the pool after `delay` seconds, unless cancelled first."""
        t = Timer(time.monotonic() + max(0.0, delay), next(self._seq), job)
        self.call_soon(lambda: heapq.heappush(self._timers, t))
        return t

    def watch(self, sock: socket.socket, job: Job) -> None:
        """Once `sock` is readable, stop watching it and run `job` on the pool."""
        self.call_soon(lambda: self._register(sock, job))

    def unwatch(self, sock: socket.socket) -> None:
        self.call_soon(lambda: self._unregister(sock))

    def call_soon(self, fn: Job) -> None:
        self._calls.put(fn)
        with contextlib.suppress(OSError):  # full: the loop is awake already
            self._wake_w.send(b"x")

    # ---- the loop thread -------------------------------------------------------------------

    def _register(self, sock: socket.socket, job: Job) -> None:
        try:
            if sock.fileno() < 0:
                self.submit(job)  # closed already: the job finds out and reconnects
                return
            try:
                self._sel.register(sock, selectors.EVENT_READ, job)
            except KeyError:
                self._sel.modify(sock, selectors.EVENT_READ, job)
        except (OSError, ValueError):
            self.submit(job)

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(sock)

    def _loop(self) -> None:
        while True:
            try:
                self._turn()
            except Exception:  # a bug here would stop every watch: log it and go on
                log.exception("imap watch loop")
                time.sleep(1.0)

    def _turn(self) -> None:
        now = time.monotonic()
        while self._timers and (self._timers[0].cancelled or self._timers[0].at <= now):
            t = heapq.heappop(self._timers)
            if not t.cancelled:
                self.submit(t.job)
        timeout = min(1.0, max(0.0, self._timers[0].at - now)) if self._timers else 1.0
        for key, _ in self._sel.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                continue
            self._unregister(key.fileobj)  # type: ignore[arg-type]
            self.submit(key.data)
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                break
            fn()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # each job handles its own failures; this is a bug
                log.exception("imap watch job")


_WATCHER: Watcher | None = None
_WATCHER_LOCK = threading.Lock()


def watcher() -> Watcher:
    """The process's one watcher, started at first use; its threads end with the process."""
    global _WATCHER
    with _WATCHER_LOCK:
        if _WATCHER is None:
            _WATCHER = Watcher()
        return _WATCHER


def _raise_file_limit() -> None:
    """A socket per watched folder: the soft limit on open files (1,024 under systemd) is
    raised to the hard one, as servers do, so a thousand mailboxes do not run out."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log.debug("open files limit raised from %d to %d", soft, hard)
