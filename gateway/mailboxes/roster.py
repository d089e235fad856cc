"""The mailboxes one source entry reaches: its roster, kept current while the source runs.

One service account (Graph application permissions, EWS impersonation, an IMAP master user)
reaches many mailboxes; the names come from up to three places, merged:
- the static `mailboxes:` list of the config;
- `mailboxes_file:`, one address a line (`#` comments and blank lines ignored), re-read
  when its mtime changes, so an admin edits it without restarting the gateway;
- a directory lookup the source kind supplies (Graph: a group's members).

Everything is re-read every `directory_refresh` seconds. A refresh that fails keeps the last
good list (a directory outage must not stop every mailbox) and shows why in `error`; a
failure of the first read has no list to fall back on and is raised to the source.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError, Permanent
from gateway.mailboxes.base import FolderRef, Reach
from gateway.reading.boundedread import UnreadableFile, read_text_bounded

ROSTER_FILE_MAX = 4 * 1024 * 1024  # ~100,000 addresses: far above any real company

Directory = Callable[[], Iterable[str]]  # the addresses a directory lists now; raises a GatewayError


class RosterError(Permanent):
    """The roster's file cannot be read (missing, not a regular file, too big, not UTF-8)."""


def parse_roster(text: str, *, fold_case: bool = True) -> list[str]:
    """One address a line, lower-cased (`fold_case`: IMAP user names keep theirs), first
    occurrence kept; `#` starts a comment."""
    return merge((line.split("#", 1)[0] for line in text.splitlines()), fold_case=fold_case)


def merge(*lists: Iterable[str], fold_case: bool = True) -> list[str]:
    """The addresses of every list, lower-cased and stripped, each once, in first-seen order."""
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            name = name.strip().lower() if fold_case else name.strip()
            if name:
                seen.setdefault(name, None)
    return list(seen)


def read_roster_file(path: Path, *, fold_case: bool = True) -> list[str]:
    try:
        return parse_roster(read_text_bounded(path, ROSTER_FILE_MAX), fold_case=fold_case)
    except UnreadableFile as exc:
        raise RosterError(f"mailboxes_file {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise RosterError(f"mailboxes_file {path}: not UTF-8 text ({exc.reason})") from None


class Roster:
    """The current mailboxes of one source; `mailboxes()` re-reads what is due first."""

    def __init__(
        self,
        static: Iterable[str] = (),
        file: Path | None = None,
        directory: Directory | None = None,
        refresh: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.static = merge(static)
        self.file, self.directory, self.refresh, self.clock = file, directory, refresh, clock
        self._lock = threading.Lock()
        self._current: list[str] | None = None  # None until a first read succeeded
        self._file_names: list[str] = []
        self._dir_names: list[str] = []
        self._mtime: int | None = None
        self._due = 0.0
        self._file_error = self._dir_error = ""
        self.refreshed: datetime | None = None

    def mailboxes(self) -> list[str]:
        """The mailboxes now. Raises what the first read met; later failures keep the last list."""
        with self._lock:
            now = self.clock()
            if self._current is None or now >= self._due:
                self._read(now, directory=True)
            elif self.file is not None and self._file_mtime() != self._mtime:
                self._read(now, directory=False)
            assert self._current is not None
            return list(self._current)

    def known(self) -> list[str]:
        """The last good list, never reading (empty before the first read)."""
        return list(self._current or [])

    def _file_mtime(self) -> int | None:
        assert self.file is not None
        try:
            return os.stat(self.file).st_mtime_ns
        except OSError:
            return None

    def _read(self, now: float, directory: bool) -> None:
        """Read the file (and the directory when asked); a part that fails keeps its last names."""
        self._due = now + self.refresh
        first: GatewayError | None = None
        if self.file is not None:
            mtime = self._file_mtime()
            try:
                self._file_names, self._mtime, self._file_error = read_roster_file(self.file), mtime, ""
            except RosterError as exc:
                self._file_error, first = str(exc), exc
        if directory and self.directory is not None:
            try:
                self._dir_names, self._dir_error = merge(self.directory()), ""
            except GatewayError as exc:
                self._dir_error, first = str(exc), first or exc
        if first is not None and self._current is None:
            raise first  # no list yet to fall back on
        self._current = merge(self.static, self._file_names, self._dir_names)
        if first is None:
            self.refreshed = datetime.now(UTC)

    @property
    def error(self) -> str:
        """Why the last read of the file or the directory failed ("" when both went through)."""
        return "; ".join(e for e in (self._file_error, self._dir_error) if e)

    def status(self) -> dict[str, Any]:
        return {
            "roster_size": len(self._current or []),
            "roster_refreshed": self.refreshed.isoformat() if self.refreshed else None,
            "roster_error": self.error,
        }


def watched_folders(source: str, roster: Roster, folders: Iterable[str], only: str | None = None) -> Iterator[FolderRef]:
    """Each watched folder (only `only` when given) of each mailbox on the roster: what a
    listing for `reconcile` walks, the same for every kind that reaches many mailboxes."""
    for mailbox in roster.mailboxes():
        for name in folders:
            if only is None or name == only:
                yield FolderRef(source, mailbox, name)


def reach(address: str, roster: Roster, people: Iterable[str | None] = ()) -> Reach:
    """How a source reaching the mailboxes of `roster` stands to `address`'s calendar: OWN
    when it is on the roster or among `people` (the config's owners and CRM user); else
    ORGANISATION when it shares a domain with one of them (an Exchange organisation answers
    free/busy for every mailbox it hosts, and its domains are what the config shows of it)."""
    address = address.strip().lower()
    try:
        names = roster.mailboxes()
    except GatewayError:  # the roster cannot be read: what was last read, and the config's people
        names = roster.known()
    mine = set(merge(names, (p for p in people if p)))
    if address in mine:
        return Reach.OWN
    domain = address.rpartition("@")[2]
    if domain and domain in {m.rpartition("@")[2] for m in mine if "@" in m}:
        return Reach.ORGANISATION
    return Reach.NONE
