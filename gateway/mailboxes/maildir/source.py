"""Maildir source: folders under a root, `fs` (VLeads/new) or Maildir++ (.VLeads/new).

A copy is identified by its unique file name without the `:2,FLAGS` suffix, so a mail
client moving it from new/ to cur/ or changing its flags is still the same copy. What is
there at start is handed over, then what arrives: inotify through watchfiles, or polling.
Tags are kept in the ledger (a Maildir has no keywords a user's client would show).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.errors import Retryable
from gateway.mailboxes.base import FolderListing, FolderRef, Found, Held, IntakePort, SourceEnv, SourceRef
from gateway.mailboxes.holding import while_held
from gateway.mailboxes.maildir import finder
from gateway.mailboxes.maildir.config import MaildirConfig
from gateway.mailboxes.maildir.layout import MaildirLayout, item_key
from gateway.mailboxes.maildir.writeback import MaildirWriteback

log = logging.getLogger("gateway.maildir")
WATCH_AGAIN = 300.0  # after watching failed, poll this long, then try watching again


class MaildirSource:
    type = "maildir"

    def __init__(self, config: MaildirConfig, root: Path, intake: IntakePort) -> None:
        self.config = config
        self.name = config.name
        self.account = config.mailbox or config.name
        self.layout = MaildirLayout(root, config.layout)
        self.intake = intake
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.mode = "poll" if not config.watch else "push"
        self.last_sync: datetime | None = None
        self.last_error = ""

    # ---- scanning -----------------------------------------------------------------------

    def _known(self, folder: str) -> set[str]:
        return self.intake.known_keys(FolderRef(self.name, self.account, folder))

    def _scan_folder(self, folder: str) -> int:
        with self._lock:
            seen = self._seen.get(folder)
            if seen is None:
                seen = self._seen[folder] = self._known(folder)
            fresh = [f for f in self.layout.files(folder) if item_key(f.name) not in seen]
            fresh.sort(key=lambda f: (_mtime(f), f.name))
            return self._hand_over(folder, fresh, seen)

    def _hand_over(self, folder: str, files: list[Path], seen: set[str], size: int = 200) -> int:
        n = 0
        for i in range(0, len(files), size):
            batch = [
                Found(SourceRef(self.name, self.account, folder, item_key(f.name)), f) for f in files[i : i + size] if f.exists()
            ]  # moved between listing and now: its new place shows it
            try:  # one ledger transaction for many files
                self.intake.hand_over(batch)
            except FileNotFoundError:  # one vanished while linking: hand them over one by one
                for found in batch:
                    try:
                        self.intake.hand_over([found])
                    except FileNotFoundError:
                        continue
            seen.update(found.ref.item_key for found in batch)
            n += len(batch)
        return n

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
        total = 0
        for folder in self.config.folders:
            self.layout.ensure(folder)
            total += self._scan_folder(folder)
        self.last_sync = datetime.now(UTC)
        return total

    def pending_count(self) -> int:
        n = 0
        for folder in self.config.folders:
            seen = self._seen.get(folder) or self._known(folder)
            n += sum(1 for f in self.layout.files(folder) if item_key(f.name) not in seen)
        return n

    def listings(
        self,
        folder: str | None = None,
        since: datetime | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[FolderListing]:
        """The files of the watched folders now (`reconcile`; gateway.mailboxes.base.Lister):
        a copy is its file's key; tags live in the ledger only, so `marks` is None."""
        for name in self.config.folders:
            if folder is not None and name != folder:
                continue
            after = since.timestamp() if since is not None else None
            files = [f for f in self.layout.files(name) if after is None or _mtime(f) >= after]
            items = tuple(Held(SourceRef(self.name, self.account, name, item_key(f.name))) for f in files)
            if progress is not None:
                progress(f"{self.name}/{name}", len(items), len(items))
            yield FolderListing(FolderRef(self.name, self.account, name), items)

    def marks_for(self, tags: Set[str]) -> frozenset[str]:
        return frozenset()  # nothing shows in a Maildir

    def reachable(self) -> list[str]:
        return [self.account]

    def find_message(self, account: str, message_id: str) -> Found | None:
        """The mail's file by its Message-ID (gateway.mailboxes.base.MessageFinder): finder.py."""
        if account != self.account:
            return None
        return finder.find(self.name, self.account, self.layout, list(self.config.folders), message_id)

    # ---- running ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch while this gateway holds the mailbox (gateways sharing a ledger divide them)."""
        while_held(self.intake, self.name, self.account, stop, self._run)

    def _run(self, stop: threading.Event) -> None:
        with self._lock:  # another gateway may have watched it meanwhile: what is known comes from the ledger
            self._seen = {}
        self._scan_until_done(None, stop)
        if not self.config.watch:
            while not stop.wait(self.config.poll_interval):
                self._scan_until_done(None, stop)
            return
        while not stop.is_set():
            try:
                self.mode = "push"
                self._watch(stop)
            except Exception as exc:  # no inotify (e.g. a network file system, no instances left): poll a while
                log.warning(
                    "maildir %s: watching failed (%s); polling every %.1fs, watching again in %.0fs",
                    self.name,
                    exc,
                    self.config.poll_interval,
                    WATCH_AGAIN,
                )
                self.mode = "poll"
                until = time.monotonic() + WATCH_AGAIN
                while time.monotonic() < until and not stop.wait(self.config.poll_interval):
                    self._scan_until_done(None, stop)

    def _scan_until_done(self, folders: list[str] | None, stop: threading.Event) -> None:
        """Scan `folders` (None: all); on any error (the ledger locked or restarting, a bug) say so
        in `status` and try again with backoff, so one failure never changes how we watch."""
        delay = 1.0
        while not stop.is_set():
            try:
                if folders is None:
                    self.scan_once()
                else:
                    for folder in folders:
                        self._scan_folder(folder)
                    self.last_sync = datetime.now(UTC)
                self.last_error = ""
                return
            except Exception as exc:
                first = str(exc).strip().splitlines()
                self.last_error = f"{type(exc).__name__}: {first[0] if first else ''}"
                log.warning(
                    "maildir %s: %s; scanning again in %.0fs",
                    self.name,
                    self.last_error,
                    delay,
                    exc_info=not isinstance(exc, Retryable) and delay == 1.0,
                )
                stop.wait(delay)
                delay = min(delay * 2, 60.0)

    def _watch(self, stop: threading.Event) -> None:
        import watchfiles

        paths = [str(self.layout.folder_path(f) / sub) for f in self.config.folders for sub in ("new", "cur")]
        folder_of = {str(self.layout.folder_path(f)): f for f in self.config.folders}
        # Rescan on every batch of changes, and at the poll interval as a safety net in case
        # an event was missed (inotify queue overflow): the known-key set makes it cheap.
        for changes in watchfiles.watch(
            *paths,
            stop_event=stop,
            rust_timeout=int(self.config.poll_interval * 1000),
            yield_on_timeout=True,
            debounce=50,
            step=20,
            raise_interrupt=False,
        ):
            folders = sorted({f for _, p in changes if (f := folder_of.get(str(Path(p).parent.parent)))})
            self._scan_until_done(folders if changes else None, stop)

    def mark_seen(self, folder: str, key: str) -> None:
        """A copy the write-back moved into `folder`: the same copy, already handled, not new mail
        when `folder` is watched too."""
        self._seen.setdefault(folder, set()).add(key)

    def status(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "connected": True,
            "mode": self.mode,
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "folders": {
                f: {"path": str(self.layout.folder_path(f)), "files": len(self.layout.files(f))} for f in self.config.folders
            },
            "last_error": self.last_error,
        }


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def make(config: MaildirConfig, env: SourceEnv) -> tuple[MaildirSource, MaildirWriteback]:
    source = MaildirSource(config, env.resolve(config.path), env.intake)
    return source, MaildirWriteback(source.layout, source.config.folders, source.mark_seen)
