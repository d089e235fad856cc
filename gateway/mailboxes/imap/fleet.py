"""Many mailboxes from one `imap` entry: `mailboxes:` (or `mailboxes_file:`) and a master user.

Each listed user is a mailbox of its own (an `ImapSource` whose config is the entry's, with
that user's login through the master: Dovecot's `user*master`, or SASL PLAIN with the user
as authorization identity). Its copies carry the user as their account, so the ledger, the
write-back and `status` tell the mailboxes apart under the one source name. The list is read
again every `LIST_EVERY` seconds and on SIGHUP: a new user is watched, a removed one is no
longer (its copies still in flight are tagged). A mailbox is watched only while the gateway
holds it (`IntakePort.holds`, asked every few seconds).

None of this costs a thread per mailbox: the mailboxes' connections share the process's
watcher (watcher.py); the entry's one supervised task is the loop below, which only asks
and waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError, Retryable
from gateway.mailboxes.base import Applied, FolderListing, Found, SourceEnv, SourceRef, TagRequest
from gateway.mailboxes.imap.config import ImapConfig
from gateway.mailboxes.imap.keywords import keywords_for
from gateway.mailboxes.imap.source import HOLDS_EVERY, ImapSource
from gateway.mailboxes.imap.watch import WatchState
from gateway.mailboxes.imap.writeback import ImapWriteback
from gateway.mailboxes.roster import RosterError, read_roster_file

log = logging.getLogger("gateway.imap")
LIST_EVERY = 300.0  # seconds between readings of `mailboxes_file`
WRITEBACKS_OPEN = 16  # write-back connections kept open at once; the least recently used is closed


class ImapFleet:
    type = "imap"

    def __init__(self, config: ImapConfig, env: SourceEnv) -> None:
        self.config = config
        self.env = env
        self.name = config.name
        self.boxes: dict[str, ImapSource] = {}
        self.listed: list[str] = []
        self.last_error = ""
        self.listed_at: datetime | None = None
        self._lock = threading.Lock()
        self._reread = threading.Event()
        self.writeback = FleetWriteback(self)

    def box(self, user: str) -> ImapSource:
        """The mailbox of this user (made when first asked: the write-back may need one that
        is no longer listed)."""
        with self._lock:
            if user not in self.boxes:
                b = ImapSource(self.config.for_mailbox(user), self.env)
                b.member = True
                self.boxes[user] = b
            return self.boxes[user]

    def users(self) -> list[str]:
        if self.config.mailboxes_file is None:
            return list(dict.fromkeys(self.config.mailboxes))
        return read_roster_file(Path(self.env.resolve(self.config.mailboxes_file)), fold_case=False)

    def mailboxes(self) -> list[str]:
        """The mailboxes listed now: what this gateway asks leases for (gateway/runtime/leases.py)."""
        return list(self.listed)

    def reload_mailboxes(self) -> None:
        """SIGHUP: read the list again now."""
        self._reread.set()

    def _refresh(self) -> None:
        try:
            users = self.users()
        except RosterError as exc:  # keep watching the mailboxes listed before
            self.last_error = str(exc)
            log.warning("imap %s: %s; keeping the %d mailboxes read before", self.name, self.last_error, len(self.listed))
            return
        gone = set(self.listed) - set(users)
        for user in sorted(gone):
            self.box(user).stop_watching()
        if gone or len(users) != len(self.listed):
            log.info("imap %s: %d mailboxes (%d no longer listed)", self.name, len(users), len(gone))
        self.listed = users
        self.listed_at = datetime.now(UTC)
        if self.last_error.startswith("mailboxes_file"):
            self.last_error = ""

    # ---- running ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        next_list = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_list or self._reread.is_set():
                    self._reread.clear()
                    self._refresh()
                    next_list = time.monotonic() + LIST_EVERY
                for user in self.listed:
                    self.box(user).keep(self.env.intake.holds(self.name, user))
                stop.wait(HOLDS_EVERY)
        finally:
            for b in list(self.boxes.values()):
                b.stop_watching()

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
        """`run --once`: every listed mailbox held by this gateway, one after the other."""
        self._refresh()
        return sum(self.box(u).scan_once() for u in self.listed if self.env.intake.holds(self.name, u))

    def pending_count(self) -> int:
        return sum(self.box(u).pending_count() for u in self.listed or self.users())

    def listings(
        self,
        folder: str | None = None,
        since: datetime | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[FolderListing]:
        """What every listed mailbox's watched folders hold now, one mailbox after the other."""
        self._refresh()
        for u in self.listed:
            yield from self.box(u).listings(folder, since, progress)

    def marks_for(self, tags: Set[str]) -> frozenset[str]:
        return frozenset(keywords_for(tags, self.env.tag_keywords))

    def reachable(self) -> list[str]:
        """The mailboxes listed now (read from the list when the entry has not run yet)."""
        return list(self.listed) or self.users()

    def find_message(self, account: str, message_id: str) -> Found | None:
        """The mail in one listed mailbox, through its master-user login (finder.py)."""
        if account not in self.reachable():
            return None
        return self.box(account).find_message(account, message_id)

    # ---- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The entry as one source (its folders summed over the mailboxes), and each mailbox."""
        boxes = [(u, self.box(u)) for u in self.listed]
        docs = {u: b.status() for u, b in boxes}
        states: dict[str, int] = {}
        for b in boxes:
            states[b[1].watch_state.value] = states.get(b[1].watch_state.value, 0) + 1
        folders: dict[str, dict[str, Any]] = {}
        for f in self.config.folders:
            per = [d["folders"][f] for d in docs.values()]
            errors = [f"{u}: {d['folders'][f]['last_error']}" for u, d in docs.items() if d["folders"][f]["last_error"]]
            modes = {p["mode"] for p in per}
            folders[f] = {
                "connected": bool(per) and all(p["connected"] for p in per),
                "mode": modes.pop() if len(modes) == 1 else "idle+poll" if modes else None,
                "fetched": sum(p["fetched"] for p in per),
                "oversize": sum(p["oversize"] for p in per),
                "idle_late": any(p["idle_late"] for p in per),
                "last_error": f"{len(errors)} mailboxes: {errors[0]}" if len(errors) > 1 else errors[0] if errors else "",
            }
        syncs = [d["last_sync"] for d in docs.values() if d["last_sync"]]
        failing = [f"{u}: {d['last_error']}" for u, d in docs.items() if d["last_error"]]
        return {
            "type": self.type,
            "account": f"{len(boxes)} mailboxes as {self.config.master_user}",
            "server": f"{self.config.host}:{self.config.port or ''}".rstrip(":"),
            "connected": any(d["connected"] for d in docs.values()),
            "mode": "push" if set(states) == {WatchState.WATCHING.value} else "poll" if states else None,
            "watching": states,
            "restarts": sum(d["restarts"] for d in docs.values()),
            "last_sync": max(syncs) if syncs else None,
            "last_error": self.last_error or (f"{len(failing)} of {len(boxes)} mailboxes: {failing[0]}" if failing else ""),
            "folders": folders,
            "mailboxes": {
                u: {k: d[k] for k in ("watch", "connected", "last_error", "restarts", "restart_reason", "last_sync", "keywords")}
                for u, d in docs.items()
            },
            "mailboxes_read_at": self.listed_at.isoformat() if self.listed_at else None,
            "at": datetime.now(UTC).isoformat(),
        }


class FleetWriteback:
    """The write-back of each mailbox (its own connection, as its master-user login), chosen
    by the copy's account. At most `WRITEBACKS_OPEN` of them keep a connection open: tagging
    in a thousand mailboxes must not hold a thousand more connections."""

    keeps_tags_in_mailbox = True

    def __init__(self, fleet: ImapFleet) -> None:
        self.fleet = fleet
        self._each: dict[str, ImapWriteback] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, account: str) -> ImapWriteback:
        with self._lock:
            wb = self._each.get(account)
            if wb is None:
                wb = self._each[account] = ImapWriteback(self.fleet.box(account))
            self._recent[account] = None
            self._recent.move_to_end(account)
            old = self._recent.popitem(last=False)[0] if len(self._recent) > WRITEBACKS_OPEN else None
        if old is not None:
            self._each[old].close()
        return wb

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        return self.of(ref.account).apply(ref, current, add, remove, move, message_id)

    def apply_many(self, requests: Sequence[TagRequest]) -> list[Applied | Retryable]:
        """Each mailbox's copies in one `apply_many` of its own write-back, in their places."""
        out: list[Applied | Retryable | None] = [None] * len(requests)
        by_account: dict[str, list[int]] = {}
        for n, r in enumerate(requests):
            by_account.setdefault(r.ref.account, []).append(n)
        for account, ns in by_account.items():
            try:
                done = self.of(account).apply_many([requests[n] for n in ns])
            except GatewayError as exc:
                done = [Retryable(str(exc))] * len(ns)
            for n, result in zip(ns, done, strict=True):
                out[n] = result
        return out  # type: ignore[return-value]
