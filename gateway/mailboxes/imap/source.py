"""IMAP source: push by IDLE (one connection per idling folder), polling for the rest.

Per account: one connection per folder in IDLE (at most `max_idle`, as servers cap
connections per user and IP — Dovecot at 10), one connection polling the other folders
every `poll_interval` seconds (all of them where the server has no IDLE or `idle: false`),
and one for the write-back. Each loop reconnects on its own with backoff and jitter and
scans from the ledger's cursor after every (re)connect. A refused login or a missing folder
is shown in `status` and retried slowly; a folder that appears later is picked up. Any other
failure (the ledger's database restarting or locked, a bug) is logged, shown in `status` and
retried with the network backoff: a loop never ends before the gateway stops.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.errors import ConfigError, GatewayError, Retryable
from gateway.mailboxes.base import FolderRef, SourceEnv, SourceRef
from gateway.mailboxes.holding import while_held
from gateway.mailboxes.imap.check import labels_that_file_mail
from gateway.mailboxes.imap.config import ImapConfig
from gateway.mailboxes.imap.conn import (
    NETWORK_ERRORS,
    ImapAuthError,
    ImapFolderMissing,
    ServerInfo,
    close_quietly,
    connect,
    logout_quietly,
    resolve_folder,
    server_folders,
)
from gateway.mailboxes.imap.folder import IDLE_RENEW, FolderState, Wake, idle_until_news, scan_settled
from gateway.mailboxes.imap.writeback import ImapWriteback

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


class ImapSource:
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

    # ---- naming -------------------------------------------------------------------------

    def ref(self, folder: str, uidvalidity: int, uid: int) -> SourceRef:
        return SourceRef(self.name, self.account, folder, str(uid), uidvalidity)

    def server_name(self, folder: str) -> str | None:
        fs = self.folders.get(folder)
        return fs.server if fs else None

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

    def _setup(self, stop: threading.Event) -> bool:
        """Log in once: capabilities, folders (created if asked), what can take keywords."""
        backoff = Backoff()
        while not stop.is_set():
            client = None
            try:
                client, self.info = connect(self.config)
                self._resolve(client, list(self.folders.values()), create=self.config.create_folders)
                self._probe_keywords(client)
                self.last_error = ""
                return True
            except ImapAuthError as exc:
                self._fail(str(exc))
                stop.wait(backoff.next(AUTH_BACKOFF_MAX))
            except ConfigError as exc:  # cannot work until the config changes: say so, don't spin
                self._fail(str(exc))
                stop.wait(AUTH_BACKOFF_MAX)
            except TALK_ERRORS as exc:
                self._fail(f"cannot reach {self.config.host}: {exc}")
                stop.wait(backoff.next())
            finally:
                logout_quietly(client)
        return False

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

    def _fail(self, message: str, states: list[FolderState] | None = None) -> None:
        self.last_error = message
        for fs in states if states is not None else self.folders.values():
            fs.connected = False
            fs.last_error = message
        log.warning("imap %s: %s", self.name, message)

    # ---- running ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch while this gateway holds the mailbox (gateways sharing a ledger divide them)."""
        while_held(self.env.intake, self.name, self.account, stop, self._run)

    def _run(self, stop: threading.Event) -> None:
        if not self._setup(stop):
            return
        assert self.info is not None
        states = list(self.folders.values())
        can_idle = self.config.idle and self.info.idle
        if self.config.idle and not self.info.idle:
            log.warning("imap %s: %s has no IDLE: polling every %.0fs", self.name, self.config.host, self.config.poll_interval)
        idle = states[: self.config.max_idle] if can_idle else []
        polled = [fs for fs in states if fs not in idle]
        for fs in idle:
            fs.mode = "idle"
        threads = [
            threading.Thread(target=self._loop, args=([fs], True, stop), name=f"imap-{self.name}-{fs.name}", daemon=True)
            for fs in idle
        ]
        for t in threads:
            t.start()
        if polled:
            self._loop(polled, False, stop)
        for t in threads:
            t.join()

    def _loop(self, states: list[FolderState], idle: bool, stop: threading.Event) -> None:
        """One connection: scan `states`, then IDLE (one folder) or wait; reconnect on failure."""
        backoff = Backoff()
        while not stop.is_set():
            client: IMAPClient | None = None
            try:
                client, _ = connect(self.config)
                wake: Wake | None = None
                while not stop.is_set():
                    missing = [fs for fs in states if fs.server is None]
                    if missing:
                        self._resolve(client, missing, create=self.config.create_folders)
                    for fs in states:
                        if fs.server is None:
                            continue
                        scan_settled(self, client, fs, wake)
                        fs.connected, fs.last_error = True, ""
                    self._clear_error()
                    backoff.reset()
                    if idle and states[0].server is not None:
                        wake = idle_until_news(self, client, stop)
                    else:  # poll (and look again for a missing folder)
                        stop.wait(self.config.poll_interval)
            except ImapAuthError as exc:
                self._fail(str(exc), states)
                stop.wait(backoff.next(AUTH_BACKOFF_MAX))
            except (ConfigError, ImapFolderMissing) as exc:
                self._fail(str(exc), states)
                stop.wait(AUTH_BACKOFF_MAX)
            except TALK_ERRORS as exc:
                text = str(exc) or type(exc).__name__
                if isinstance(exc, IMAPClientError) and "NONEXISTENT" in text.upper():
                    for fs in states:  # deleted under us: look for it again after the wait
                        fs.server = None
                self._fail(f"connection to {self.config.host} lost: {text}", states)
                stop.wait(backoff.next())
            except Exception as exc:  # the ledger (pool timeout, database restarted or locked), a bug
                first = str(exc).strip().splitlines()
                self._fail(f"{type(exc).__name__}: {first[0] if first else ''}", states)
                log.warning(
                    "imap %s: %s: retrying after the error",
                    self.name,
                    ", ".join(fs.name for fs in states),
                    exc_info=backoff.n == 0,
                )  # the traceback once per run of failures
                stop.wait(backoff.next())
            finally:
                if stop.is_set():
                    logout_quietly(client)
                else:
                    close_quietly(client)
        for fs in states:
            fs.connected = False

    def _clear_error(self) -> None:
        """Every folder works again: the source's own last error is history."""
        if self.last_error and all(fs.connected and not fs.last_error for fs in self.folders.values()):
            self.last_error = ""

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
            "folders": {fs.name: fs.doc() for fs in states},
            "at": datetime.now(UTC).isoformat(),
        }


def make(config: ImapConfig, env: SourceEnv) -> tuple[ImapSource, ImapWriteback]:
    source = ImapSource(config, env)
    return source, ImapWriteback(source)
