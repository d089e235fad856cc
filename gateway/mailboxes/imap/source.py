"""IMAP source: one mailbox (account), its folders watched through the process's watcher.

Per account: a connection per folder in IDLE (at most `max_idle`, as servers cap connections
per user and IP — Dovecot at 10), one connection polling the other folders every
`poll_interval` seconds (all of them where the server has no IDLE or `idle: false`), and one
for the write-back. No connection has a thread of its own: the watcher (watcher.py) holds
the sockets in IDLE and runs the logins and scans on its small pool (watch.py says how one
connection is watched). Each connection reconnects on its own with backoff and jitter and
scans from the ledger's cursor after every (re)connect; `status` counts the restarts and
says why. A refused login or a missing folder is shown in `status` and retried slowly; a
folder that appears later is picked up. The mailbox is watched only while the gateway holds
it (`IntakePort.holds`, asked every few seconds).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator, Set
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from gateway.errors import ConfigError, GatewayError, Retryable
from gateway.mailboxes.base import FolderListing, FolderRef, SourceEnv, SourceRef
from gateway.mailboxes.imap import listing
from gateway.mailboxes.imap.check import labels_that_file_mail
from gateway.mailboxes.imap.config import ImapConfig
from gateway.mailboxes.imap.conn import (
    ImapAuthError,
    ServerInfo,
    connect,
    logout_quietly,
    resolve_folder,
    server_folders,
)
from gateway.mailboxes.imap.finder import FindsMessages
from gateway.mailboxes.imap.folder import IDLE_RENEW, FolderState, scan_settled
from gateway.mailboxes.imap.keywords import keywords_for
from gateway.mailboxes.imap.notify import can_notify
from gateway.mailboxes.imap.watch import AUTH_BACKOFF_MAX, TALK_ERRORS, Backoff, FolderWatch, WatchState
from gateway.mailboxes.imap.watcher import Timer, watcher

log = logging.getLogger("gateway.imap")
HOLDS_EVERY = 5.0  # seconds between asking the gateway whether it still holds the mailbox
__all__ = ["AUTH_BACKOFF_MAX", "Backoff", "ImapSource"]


class ImapSource(FindsMessages):  # find_message: finder.py
    type = "imap"

    def __init__(self, config: ImapConfig, env: SourceEnv) -> None:
        self.config = config
        self.env = env
        self.name = config.name
        self.account = config.username
        self.folders = {f: FolderState(f) for f in config.folders}
        self.info: ServerInfo | None = None
        self.keywords = "unknown"  # keywords | gmail labels | ledger only
        self.no_keywords: set[str] = set()  # server folders said to take no keywords
        self.max_size = int(env.max_message_size)
        self.idle_renew = IDLE_RENEW
        self.last_error = ""
        self.moved_lock = threading.Lock()
        self.moved_in: dict[tuple[str, int], set[int]] = {}  # our own moves: (folder, UIDVALIDITY) → UIDs
        self._lock = threading.Lock()
        self._bar: Any = None
        self._bar_tasks = 0
        self.member = False  # one of many mailboxes of its entry (fleet.py): named with its account
        self.watches: list[FolderWatch] = []
        self.state = WatchState.STOPPED
        self.restarts = 0  # connections (or the start-up login) that failed and were started again
        self.restart_reason = ""
        self._backoff = Backoff()
        self._timer: Timer | None = None
        self._running = False
        self._round = 0  # each start and stop of watching: a late start-up of an old round does nothing
        self._watch_lock = threading.Lock()

    # ---- naming -------------------------------------------------------------------------

    def ref(self, folder: str, uidvalidity: int, uid: int) -> SourceRef:
        return SourceRef(self.name, self.account, folder, str(uid), uidvalidity)

    def server_name(self, folder: str) -> str | None:
        fs = self.folders.get(folder)
        return fs.server if fs else None

    @property
    def label(self) -> str:
        """How the log names this mailbox: the source, and its account when the entry has many."""
        return f"{self.name} ({self.account})" if self.member else self.name

    def resolve(self, client: IMAPClient, states: list[FolderState]) -> None:
        self._resolve(client, states, create=self.config.create_folders)

    def _resolve(self, client: IMAPClient, states: list[FolderState], create: bool = False) -> None:
        listing = server_folders(client)
        for fs in states:
            fs.server = resolve_folder(fs.name, listing)
            if fs.server is None and create and not fs.name.startswith("\\"):
                client.create_folder(fs.name)
                log.info("imap %s: created folder %s", self.name, fs.name)
                listing = server_folders(client)
                fs.server = resolve_folder(fs.name, listing)
            if fs.server is None:
                fs.last_error = (
                    f"no folder with the special use {fs.name} on the server"
                    if fs.name.startswith("\\")
                    else f"folder {fs.name!r} does not exist (create it, or set create_folders: true)"
                )
                fs.connected = False

    # ---- start-up -----------------------------------------------------------------------

    def _setup(self) -> IMAPClient:
        """Log in once: capabilities, folders (created if asked), what can take keywords. The
        connection is kept: the first watched folder goes on with it."""
        client, self.info = connect(self.config)
        try:
            self._resolve(client, list(self.folders.values()), create=self.config.create_folders)
            self._probe_keywords(client)
        except BaseException:
            logout_quietly(client)
            raise
        self.last_error = ""
        return client

    def _probe_keywords(self, client: IMAPClient) -> None:
        """PERMANENTFLAGS is only sent for a SELECT: look once, then LOGOUT (which, unlike
        CLOSE, never expunges)."""
        assert self.info is not None
        if self.info.gmail:
            self.keywords = "gmail labels"
            facts = self.env.rule_facts() if self.env.rule_facts is not None else None
            for problem in labels_that_file_mail(facts, list(self.config.folders)) if facts is not None else ():
                log.warning("imap %s: %s", self.name, problem)  # `check` refuses it; here mail still flows
            return
        fs = next((f for f in self.folders.values() if f.server), None)
        if fs is None or fs.server is None:
            return
        perm = client.select_folder(fs.server).get(b"PERMANENTFLAGS", ())
        if b"\\*" in perm:
            self.keywords = "keywords"
        else:
            self.note_no_keywords(fs.server, perm)

    def note_no_keywords(self, folder: str, perm: Any) -> None:
        """Said once per folder (the first at start): it takes no keywords, its tags stay in the ledger."""
        with self._lock:
            if folder in self.no_keywords:
                return
            self.no_keywords.add(folder)
            self.keywords = (
                "ledger only"
                if self.keywords in ("unknown", "ledger only")
                else f"keywords, ledger only in {', '.join(sorted(self.no_keywords))}"
            )
        log.warning(
            "imap %s: %s takes no keywords in %s (PERMANENTFLAGS %s has no \\*): its tags are kept in the ledger only",
            self.name,
            self.config.host,
            folder,
            b" ".join(perm).decode() or "()",
        )

    def fail(self, message: str, states: list[FolderState] | None = None) -> None:
        """A connection failed and will be started again after its back-off: shown in status."""
        self.last_error = message
        self.restarts += 1
        self.restart_reason = message
        for fs in states if states is not None else self.folders.values():
            fs.connected = False
            fs.last_error = message
        log.warning("imap %s: %s", self.label, message)

    # ---- running ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch the folders (while the gateway holds the mailbox) until `stop` is set."""
        self.keep(self.env.intake.holds(self.name, self.account))
        try:
            while not stop.wait(HOLDS_EVERY):
                self.keep(self.env.intake.holds(self.name, self.account))
        finally:
            self.stop_watching()

    def keep(self, held: bool) -> None:
        """Start watching a mailbox the gateway holds, stop watching one it no longer holds."""
        if held and not self._running:
            self.start_watching()
        elif not held and self._running:
            log.info("imap %s: no longer held by this gateway: not watched", self.label)
            self.stop_watching()
            self.state = WatchState.NOT_HELD
        elif not held:
            self.state = WatchState.NOT_HELD

    def start_watching(self) -> None:
        with self._watch_lock:
            self._running = True
            self._round += 1
            self.state = WatchState.STARTING
            rnd = self._round
        watcher().submit(lambda: self._start(rnd))

    def stop_watching(self) -> None:
        """Close every connection; a start-up login running now ends without watching."""
        with self._watch_lock:
            self._running = False
            self._round += 1
            if self._timer is not None:
                self._timer.cancel()
            watches, self.watches = self.watches, []
            self.state = WatchState.STOPPED
        for w in watches:
            w.stop()
        for fs in self.folders.values():
            fs.connected = False

    def _current(self, rnd: int) -> bool:
        return self._running and rnd == self._round

    def _start(self, rnd: int) -> None:
        """On the watcher's pool: the start-up login, then one watch per connection; nothing
        if the mailbox was let go (or let go and taken again: `rnd` is another round) meanwhile."""
        if not self._current(rnd):
            return
        try:
            client = self._setup()
        except Exception as exc:
            self._setup_failed(exc, rnd)
            return
        self._backoff.reset()
        assert self.info is not None
        states = list(self.folders.values())
        can_idle = self.config.idle and self.info.idle
        if self.config.idle and not self.info.idle:
            log.warning("imap %s: %s has no IDLE: polling every %.0fs", self.label, self.config.host, self.config.poll_interval)
        idle = states[: self.config.max_idle] if can_idle else []
        polled = [fs for fs in states if fs not in idle]
        w = watcher()
        if can_idle and self.config.notify and can_notify(self.info):  # every folder on one connection
            idle, polled = states, []
            watches = [FolderWatch(self, states, True, w, notify=True)]
        else:
            watches = [FolderWatch(self, [fs], True, w) for fs in idle]
        if polled:
            watches.append(FolderWatch(self, polled, False, w))
        with self._watch_lock:
            if not self._current(rnd):
                logout_quietly(client)
                return
            for fs in states:
                fs.mode = ("notify" if watches[0].notify else "idle") if fs in idle else "poll"
            self.state = WatchState.STARTING  # from here on, the watches say how the mailbox is
            self.watches = watches
            for i, fw in enumerate(watches):
                fw.start(client if i == 0 else None)

    def _setup_failed(self, exc: Exception, rnd: int) -> None:
        if isinstance(exc, ImapAuthError):
            delay = self._backoff.next(AUTH_BACKOFF_MAX)
        elif isinstance(exc, ConfigError):  # cannot work until the config changes: say so, don't spin
            delay = AUTH_BACKOFF_MAX
        elif isinstance(exc, TALK_ERRORS):
            exc = ConnectionError(f"cannot reach {self.config.host}: {exc}")
            delay = self._backoff.next()
        else:
            log.warning("imap %s: start-up failed", self.label, exc_info=True)
            delay = self._backoff.next()
        with self._watch_lock:
            if not self._current(rnd):
                return
            self.state = WatchState.RECONNECTING
            self.fail(str(exc))
            self._timer = watcher().later(delay, lambda: self._start(rnd))

    def clear_error(self) -> None:
        """Every folder works again: the source's own last error is history."""
        if self.last_error and all(fs.connected and not fs.last_error for fs in self.folders.values()):
            self.last_error = ""

    @property
    def watch_state(self) -> WatchState:
        """The mailbox's: watching (some folder in IDLE), polling, or what keeps it from either."""
        if self.state != WatchState.STARTING or not self.watches:
            return self.state
        states = {w.state for w in self.watches}
        if WatchState.RECONNECTING in states:
            return WatchState.RECONNECTING
        if WatchState.STARTING in states:
            return WatchState.STARTING
        return WatchState.WATCHING if WatchState.WATCHING in states else WatchState.POLLING

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
        """`run --once`: every folder from its cursor, on one connection."""
        client, self.info = self._connect_once()
        try:
            self._resolve(client, list(self.folders.values()), create=self.config.create_folders)
            self._probe_keywords(client)
            total = 0
            for fs in self.folders.values():
                if fs.server is None:
                    log.warning("imap %s: %s", self.name, fs.last_error)
                    continue
                total += scan_settled(self, client, fs, bar=progress is None)
                fs.last_error = ""
            return total
        finally:
            logout_quietly(client)

    def pending_count(self) -> int:
        """Messages above the cursors now (for `run --once`'s progress bar)."""
        try:
            client, _ = self._connect_once()
        except GatewayError:
            return 0
        try:
            listing = server_folders(client)
            n = 0
            for fs in self.folders.values():
                server = resolve_folder(fs.name, listing)
                if server is None:
                    continue
                uv = int(client.select_folder(server, readonly=True)[b"UIDVALIDITY"])
                cur = self.env.intake.cursor(FolderRef(self.name, self.account, fs.name)) or {}
                last = int(cur.get("last_uid", 0)) if cur.get("uidvalidity") == uv else 0
                n += sum(1 for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
            return n
        except TALK_ERRORS:
            return 0
        finally:
            logout_quietly(client)

    def listings(
        self,
        folder: str | None = None,
        since: datetime | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[FolderListing]:
        """What the watched folders hold now (`reconcile`; gateway.mailboxes.base.Lister)."""
        client, info = self._connect_once()
        return listing.listings(self, client, folder, since, progress, keywords=not info.gmail)

    def marks_for(self, tags: Set[str]) -> frozenset[str]:
        return frozenset(keywords_for(tags, self.env.tag_keywords))

    def _connect_once(self) -> tuple[IMAPClient, ServerInfo]:
        try:
            return connect(self.config)
        except (ImapAuthError, ConfigError):
            raise
        except TALK_ERRORS as exc:
            raise Retryable(f"imap {self.name}: cannot reach {self.config.host}: {exc}") from exc

    # ---- a progress bar for a backfill on a terminal ------------------------------------

    def progress_start(self, folder: str, total: int) -> Any:
        if total < 50 or not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import Progress

        with self._lock:
            if self._bar is None:
                self._bar = Progress(console=Console(stderr=True), transient=False)
                self._bar.start()
            self._bar_tasks += 1
            return self._bar.add_task(f"{self.name}: {folder}", total=total)

    def progress_advance(self, task: Any, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(task, n)

    def progress_done(self, task: Any) -> None:
        with self._lock:
            self._bar_tasks -= 1
            if self._bar is not None and self._bar_tasks == 0:
                self._bar.stop()
                self._bar = None

    # ---- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        states = list(self.folders.values())
        modes = {fs.mode for fs in states}
        syncs = [fs.last_sync for fs in states if fs.last_sync]
        errors = [f"{fs.name}: {fs.last_error}" for fs in states if fs.last_error and fs.last_error != self.last_error]
        return {
            "type": self.type,
            "account": self.account,
            "server": f"{self.config.host}:{self.config.port or ''}".rstrip(":"),
            "connected": any(fs.connected for fs in states),
            "mode": "push" if modes == {"idle"} else "poll" if modes == {"poll"} else "push+poll",
            "idle_folders": [fs.name for fs in states if fs.mode == "idle"],
            "polled_folders": [fs.name for fs in states if fs.mode == "poll"],
            "keywords": self.keywords,
            "capabilities": sorted(self.info.capabilities) if self.info else [],
            "last_sync": max(syncs).isoformat() if syncs else None,
            "last_error": self.last_error or "; ".join(errors),
            "watch": self.watch_state.value,
            "restarts": self.restarts,
            "restart_reason": self.restart_reason,
            "folders": {fs.name: fs.doc() for fs in states},
            "at": datetime.now(UTC).isoformat(),
        }
