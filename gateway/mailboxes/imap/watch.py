"""One watched connection of a mailbox: its folder in IDLE, or its folders polled.

A `FolderWatch` is a small state machine driven by the process's watcher (watcher.py): each
step runs on the watcher's pool and ends by handing the next one back to it — the socket in
IDLE to the selector, a poll or a reconnect to a timer. So no thread waits for a folder.

    connect (through the server's login gate) → scan → IDLE ─ news ─→ DONE → scan → IDLE …
                                                      └ renewal time ┘
    any failure → closed, shown in status, counted as a restart → back-off → connect

A connection beyond the server's `max_connections` is not kept: its folders are polled
every `poll_interval` on a connection opened for each poll. The cursor in the ledger is the
truth, as before; IDLE is only the hint to scan now.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.errors import ConfigError, Retryable
from gateway.mailboxes.imap.account import ImapAccount
from gateway.mailboxes.imap.conn import (
    NETWORK_ERRORS,
    ImapAuthError,
    ImapFolderMissing,
    buffered,
    close_quietly,
    connect,
    default_port,
)
from gateway.mailboxes.imap.folder import FolderState, Wake, scan_settled
from gateway.mailboxes.imap.notify import leave_folder, set_notify
from gateway.mailboxes.imap.servers import server_for
from gateway.mailboxes.imap.watcher import Timer, Watcher


class WatchedMailbox(ImapAccount, Protocol):
    """What a watch needs of its mailbox (source.py's ImapSource), so the source imports the
    watch and nothing imports back."""

    @property
    def label(self) -> str: ...

    def resolve(self, client: IMAPClient, states: list[FolderState]) -> None: ...

    def fail(self, message: str, states: list[FolderState] | None = None) -> None: ...

    def clear_error(self) -> None: ...


log = logging.getLogger("gateway.imap")
BACKOFF_MAX = 60.0
AUTH_BACKOFF_MAX = 300.0
TALK_ERRORS = (*NETWORK_ERRORS, IMAPClientError, Retryable)


class Backoff:
    """1 s, 2 s, 4 s … up to a cap, each ±25 % so reconnecting clients do not march in step."""

    def __init__(self, cap: float = BACKOFF_MAX) -> None:
        self.cap = cap
        self.n = 0

    def next(self, cap: float | None = None) -> float:
        delay = min(cap or self.cap, 2.0**self.n)
        self.n = min(self.n + 1, 20)
        return delay * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        self.n = 0


class WatchState(StrEnum):
    STARTING = "starting"
    WATCHING = "watching"  # in IDLE
    POLLING = "polling"
    RECONNECTING = "reconnecting"  # failed; waiting for its back-off
    NOT_HELD = "not held"  # another gateway holds the mailbox (IntakePort.holds)
    STOPPED = "stopped"


class FolderWatch:
    def __init__(
        self, box: WatchedMailbox, states: list[FolderState], idle: bool, watcher: Watcher, *, notify: bool = False
    ) -> None:
        self.box = box
        self.states = states
        self.idle = idle  # IDLE on states[0] (one folder) while the server's budget has room
        self.notify = notify  # IDLE with NOTIFY on all `states` (notify.py)
        self._notify_on: tuple[IMAPClient, list[str]] | None = None  # NOTIFY SET sent: on which connection, for what
        self.watcher = watcher
        self.server = server_for(box.config, default_port(box.config))
        self.state = WatchState.STARTING
        self.restarts = 0
        self.restart_reason = ""
        self.backoff = Backoff()
        self.client: IMAPClient | None = None
        self.slot = False  # holds one of the server's `max_connections`
        self._lock = threading.Lock()
        self._gen = 0  # bumped at every step: a late socket event or timer of an old step is dropped
        self._timer: Timer | None = None
        self._stopped = False
        self._idle_since = 0.0

    @property
    def label(self) -> str:
        return ", ".join(fs.name for fs in self.states)

    # ---- from the mailbox ------------------------------------------------------------------

    def start(self, client: IMAPClient | None = None) -> None:
        """Begin (with a logged-in `client` to adopt, or by connecting)."""
        if client is not None and self.idle:
            self.slot = self.server.take_connection()
        self.client = client
        gen = self._gen
        self.watcher.submit(lambda: self._run(gen, self._step))

    def stop(self) -> None:
        """Close the connection; a step running now (a scan) closes it when it ends."""
        self._stopped = True
        if self._lock.acquire(timeout=0.5):
            try:
                self._gen += 1
                self._drop()
            finally:
                self._lock.release()
        self.state = WatchState.STOPPED
        for fs in self.states:
            fs.connected = False

    # ---- the steps, on the watcher's pool ---------------------------------------------------

    def _run(self, gen: int, body: Callable[[], None]) -> None:
        """One step, if it is still the one waited for (`gen`: a socket event or timer of a
        wait that is over is dropped); a failure is handled here."""
        with self._lock:
            if self._stopped or gen != self._gen:
                return
            try:
                body()
            except Exception as exc:
                self._gen += 1
                self._failed(exc)
            if self._stopped:
                self._drop()

    def _step(self, wake: Wake | None = None) -> None:
        """Connect if need be, scan, then hand the connection back to the watcher."""
        self._gen += 1
        box = self.box
        if self.client is None:
            if self.idle and not self.slot:
                self.slot = self.server.take_connection()
            self.client, _ = connect(box.config)
        client = self.client
        missing = [fs for fs in self.states if fs.server is None]
        if missing:
            box.resolve(client, missing)
        found = [fs.server for fs in self.states if fs.server is not None]
        if self.notify and self.slot and found and self._notify_on != (client, found):  # again once a missing folder appears
            set_notify(client, found)
            self._notify_on = (client, found)
        for _round in range(3):  # with NOTIFY: again while other folders announced news during the scans
            for fs in self.states:
                if fs.server is None:
                    continue
                scan_settled(box, client, fs, wake)
                fs.connected, fs.last_error = True, ""
                fs.mode = ("notify" if self.notify else "idle") if self.idle and self.slot else "poll"
            if not (self.notify and self.slot and leave_folder(client)):
                break
            wake = None
        box.clear_error()
        self.backoff.reset()
        gen = self._gen
        if self.idle and self.slot and (self._notify_on is not None if self.notify else self.states[0].server is not None):
            self._idle_since = time.time()
            client.idle()
            self.state = WatchState.WATCHING
            if buffered(client):  # news came with the continuation: read by imaplib, unseen by the selector
                self._end_idle(True)
                return
            self.watcher.watch(client.socket(), lambda: self._run(gen, self._news))
            self._timer = self.watcher.later(box.idle_renew, lambda: self._run(gen, self._renew))
            return
        self.state = WatchState.POLLING
        if not self.slot:  # beyond the server's budget (or never meant to idle): no connection kept
            if not self.idle and self.server.take_connection():
                self.slot = True
            else:
                self._drop()
        self._timer = self.watcher.later(box.config.poll_interval, lambda: self._run(gen, self._step))

    def _news(self) -> None:
        """The socket in IDLE is readable: news, a keep-alive, or the server going away."""
        assert self.client is not None
        resps = self.client.idle_check(timeout=0)
        if not resps:  # readable yet nothing to read: EOF, the server closed the connection
            raise ConnectionError("the server closed the connection during IDLE")
        news = announced = False
        for r in resps:
            if (len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT")) or (r and r[0] == b"STATUS"):  # STATUS: NOTIFY
                news = announced = True
            elif r and r[0] in (b"NO", b"BAD"):  # e.g. Dovecot when the folder is deleted: re-select
                news = True
            elif r and r[0] == b"BYE":
                raise ConnectionError(f"server said BYE: {r[1:]!r}")
        if news:
            self._end_idle(announced)
        else:  # "* OK Still here": keep idling, same wait
            gen = self._gen
            self.watcher.watch(self.client.socket(), lambda: self._run(gen, self._news))

    def _renew(self) -> None:
        """RFC 2177: IDLE is re-issued well inside the server's 30-minute logout; a scan on the way."""
        assert self.client is not None
        self.watcher.unwatch(self.client.socket())
        self._end_idle(False)

    def _end_idle(self, announced: bool) -> None:
        assert self.client is not None
        if self._timer is not None:
            self._timer.cancel()
        woke = time.time()
        self.client.idle_done()  # answered within the socket's read timeout, or raises
        self._step(Wake(self._idle_since, woke, announced))

    # ---- failures ---------------------------------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        """Drop the connection, say why, and try again after the back-off."""
        box = self.box
        cap: float | None = None
        if isinstance(exc, ImapAuthError):
            message, cap = str(exc), AUTH_BACKOFF_MAX
        elif isinstance(exc, ConfigError | ImapFolderMissing):
            message, cap = str(exc), -1.0
        elif isinstance(exc, TALK_ERRORS):
            text = str(exc) or type(exc).__name__
            if isinstance(exc, IMAPClientError) and "NONEXISTENT" in text.upper():
                for fs in self.states:  # deleted under us: look for it again after the wait
                    fs.server = None
            message = f"connection to {box.config.host} lost: {text}"
        else:  # the ledger (pool timeout, database restarted or locked), a bug
            first = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {first[0] if first else ''}"
            log.warning(
                "imap %s: %s: retrying after the error", box.label, self.label, exc_info=self.backoff.n == 0
            )  # the traceback once per run of failures
        self._drop()
        self.state = WatchState.RECONNECTING
        self.restarts += 1
        self.restart_reason = message
        box.fail(message, self.states)
        delay = AUTH_BACKOFF_MAX if cap == -1.0 else self.backoff.next(cap)
        gen = self._gen
        self._timer = self.watcher.later(delay, lambda: self._run(gen, self._step))

    def _drop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.client is not None:
            with contextlib.suppress(Exception):  # no socket any more
                self.watcher.unwatch(self.client.socket())
            close_quietly(self.client)
            self.client = None
            self._notify_on = None
        if self.slot:
            self.server.give_connection()
            self.slot = False
