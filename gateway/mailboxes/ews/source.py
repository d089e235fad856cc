"""Exchange Server (2016/2019/SE) over EWS with exchangelib: the `ews` source.

One service account reaches every configured mailbox by impersonation or delegate access.
Each watched folder is found by display name under the mailbox root (created when missing
and `create_folders: true`) and read with SyncFolderItems; the SyncState is persisted in the
ledger after every page, so a restart resumes where it stopped and nothing is fetched twice.
An expired state (ErrorInvalidSyncStateData) starts the folder over; items the ledger already
knows are skipped, so the resync creates nothing twice.

Push: one streaming subscription per mailbox on a connection of its own (exchangelib's pool
has one connection by default, and GetStreamingEvents holds it for minutes); any
notification triggers a sync of that mailbox's folders, and every (re)connect starts with
one, so nothing that arrived while the stream was down is missed. A slow safety-net poll runs
as well. Each item's MIME content goes into the pipeline keyed by its item id (never the
changekey: setting a category changes it). Tags are written back as categories after the CRM
commit (writeback.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import UTC, datetime
from typing import Any

from exchangelib import errors as xerr
from exchangelib.fields import FieldPath
from exchangelib.folders import Folder, FolderCollection
from exchangelib.items import ID_ONLY, Message
from exchangelib.services import GetStreamingEvents, SyncFolderItems

from gateway.errors import ConfigError, GatewayError
from gateway.mailboxes.base import FolderListing, FolderRef, Found, Reach, SourceEnv, SourceRef
from gateway.mailboxes.ews import availability, finder, listing
from gateway.mailboxes.ews.config import EwsConfig
from gateway.mailboxes.ews.session import EwsError, EwsSession
from gateway.mailboxes.ews.writeback import EwsWriteback
from gateway.mailboxes.health import Health, sync_each
from gateway.mailboxes.roster import Roster
from gateway.mailboxes.roster import reach as roster_reach
from gateway.mailboxes.schedule import Schedule

log = logging.getLogger("gateway.ews")
STREAM_MINUTES = 30  # the longest GetStreamingEvents connection EWS allows
_SIZE = FieldPath(field=Message.get_field_by_fieldname("size"))


class FolderStat:
    def __init__(self) -> None:
        self.items = 0
        self.last_sync: datetime | None = None
        self.last_error = ""
        self.cursor = ""


class EwsSource:
    type = "ews"

    def __init__(self, cfg: EwsConfig, env: SourceEnv) -> None:
        self.config = cfg
        self.name = cfg.name
        self.env = env
        self.session = EwsSession(cfg)
        self.max_size = env.max_message_size
        self._folders: dict[tuple[str, str], Folder] = {}
        # the mailboxes follow the roster (directory lookup: none for EWS); per-mailbox
        # locks, stats and streams are made as a mailbox joins and dropped as it leaves
        file = env.resolve(cfg.mailboxes_file) if cfg.mailboxes_file else None
        self.roster = Roster(self.session.mailboxes, file, None, cfg.directory_refresh)
        self.health = Health()
        self._locks: dict[str, threading.Lock] = {}
        self.stats: dict[tuple[str, str], FolderStat] = {}
        self._stream_stops: dict[str, threading.Event] = {}
        self.streams: dict[str, Any] = {}  # mailbox → GetStreamingEvents service while connected
        self.moved_in: set[str] = set()  # item ids the write-back moved into a folder: not new mail
        self.connected = False
        self.last_sync: datetime | None = None
        self.last_error = ""
        self.resyncs = 0

    @property
    def mailboxes(self) -> list[str]:
        """The roster as last read; a turn re-reads it when due."""
        return self.roster.known()

    # ---- folders and sync ---------------------------------------------------------------

    def folder(self, mailbox: str, name: str, create: bool | None = None) -> Folder:
        key = (mailbox, name)
        if key not in self._folders:
            self._folders[key] = self.session.find_folder(mailbox, name, self.config.create_folders if create is None else create)
        return self._folders[key]

    def sync_folder(self, mailbox: str, name: str) -> int:
        """SyncFolderItems page by page; the SyncState is stored after each page's items are durable."""
        stat = self.stats.setdefault((mailbox, name), FolderStat())
        folder = self.folder(mailbox, name)
        acct = self.session.account(mailbox)
        cursor = self.env.intake.cursor(FolderRef(self.name, mailbox, name)) or {}
        state = cursor.get("sync_state") if cursor.get("folder_id") == folder.id else None
        n = 0
        while True:
            svc = SyncFolderItems(account=acct)

            def page(svc: SyncFolderItems = svc, state: str | None = state) -> list[Any]:
                return list(
                    svc.call(
                        folder=folder,
                        shape=ID_ONLY,
                        additional_fields={_SIZE},
                        sync_state=state,
                        ignore=None,
                        max_changes_returned=self.config.page_size,
                        sync_scope=None,
                    )
                )

            try:
                changes = self.session.call(page, f"syncing {name} in {mailbox}")
            except xerr.ErrorInvalidSyncStateData:
                log.warning("ews %s: the sync state of %s/%s expired; reading the folder again", self.name, mailbox, name)
                self.resyncs += 1
                state = None
                continue
            except xerr.ErrorFolderNotFound:
                self._folders.pop((mailbox, name), None)  # deleted or recreated: look it up again next time
                raise EwsError(f"folder {name!r} disappeared from {mailbox}") from None
            for kind, item in changes:
                if kind == SyncFolderItems.CREATE and self._take(acct, mailbox, name, item):
                    n += 1
            state = svc.sync_state
            self.env.intake.advance(FolderRef(self.name, mailbox, name), {"folder_id": folder.id, "sync_state": state})
            stat.cursor = (state or "")[:12]
            if svc.includes_last_item_in_range:
                break
        stat.items += n
        stat.last_sync = self.last_sync = datetime.now(UTC)
        stat.last_error = ""
        return n

    def _take(self, acct: Any, mailbox: str, folder: str, item: Any) -> bool:
        ref = SourceRef(self.name, mailbox, folder, item.id)
        if item.id in self.moved_in or self.env.intake.is_known(ref):
            return False
        size = item.size or 0
        field = "headers" if size > self.max_size else "mime_content"
        got = self.session.call(
            lambda: list(acct.fetch(ids=[(item.id, item.changekey)], only_fields=[field])), f"reading an item in {folder}"
        )
        if not got or isinstance(got[0], Exception):
            return False  # moved or deleted since the sync listed it: its new place lists it again
        if field == "headers":
            raw = "".join(f"{h.name}: {h.value}\r\n" for h in got[0].headers or []).encode() + b"\r\n"
            self.env.intake.hand_over([Found(ref, raw, size)])
        else:
            self.env.intake.hand_over([Found(ref, got[0].mime_content)])
        return True

    def sync_mailbox(self, mailbox: str) -> int:
        if not self.env.intake.holds(self.name, mailbox):  # another gateway watches it (or none does yet)
            return 0
        n = 0
        with self._locks.setdefault(mailbox, threading.Lock()):
            for name in self.config.folders:
                try:
                    n += self.sync_folder(mailbox, name)
                except GatewayError as exc:
                    self.stats.setdefault((mailbox, name), FolderStat()).last_error = str(exc)
                    raise
        return n

    def follow_roster(self) -> tuple[list[str], list[str]]:
        """Re-read the roster when due; returns the mailboxes (added, removed) since the last turn."""
        added, removed = self.health.follow(self.roster.mailboxes())
        for mb in removed:
            for key in [k for k in self.stats if k[0] == mb]:
                del self.stats[key]
            for key in [k for k in self._folders if k[0] == mb]:
                del self._folders[key]
            self._locks.pop(mb, None)
        return added, removed

    def scan_once(self, progress: Callable[[int, int], None] | None = None, only: list[str] | None = None) -> int:
        """One turn over the mailboxes this gateway holds (`only`: just these), each on its
        own: one that fails is marked and the others go on. Raises when the roster cannot be
        read the first time, or when every mailbox tried failed."""
        if only is None:
            self.follow_roster()
        total = sync_each(
            self.health,
            self.mailboxes if only is None else only,
            holds=lambda mb: self.env.intake.holds(self.name, mb),
            sync=self.sync_mailbox,
            stopping=self.session.stop,
            log=log,
            label=f"ews {self.name}",
        )
        self.connected, self.last_error = True, self.health.summary() or self.roster.error
        return total

    def pending_count(self) -> int:
        return 0  # unknown until SyncFolderItems answers

    def listings(
        self,
        folder: str | None = None,
        since: datetime | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[FolderListing]:
        """What the watched folders hold now (`reconcile`; gateway.mailboxes.base.Lister): listing.py."""
        return listing.listings(self, folder, since, progress)

    @property
    def watched(self) -> list[str]:
        return list(self.config.folders)

    def reachable(self) -> list[str]:
        return self.roster.mailboxes()

    def find_message(self, account: str, message_id: str) -> Found | None:
        """The mail by its Message-ID (gateway.mailboxes.base.MessageFinder): finder.py."""
        return finder.find(self, account, message_id)

    def marks_for(self, tags: Set[str]) -> frozenset[str]:
        return frozenset(tags)  # a tag is written back as the category of the same name

    # ---- free/busy (gateway.mailboxes.base.Availability): availability.py ----------------

    def reach(self, address: str) -> Reach:
        return roster_reach(address, self.roster, [*self.config.owners, self.config.crm_user, self.config.username])

    def free_busy(self, addresses: Sequence[str], start: datetime, end: datetime, interval: int) -> list[Schedule]:
        mailboxes = self.roster.mailboxes()
        if not mailboxes:
            raise EwsError(f"ews {self.name}: no mailbox on the roster to ask the free/busy through")
        return availability.free_busy(self.session, self.name, mailboxes[0], addresses, start, end, interval)

    # ---- running ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.session.stop = stop
        self._safe(lambda: self.scan_once())
        threads: list[threading.Thread] = []
        self._follow_streams(stop, threads)
        # Safety net: with push working this is rare; without it, it is the poll. The roster
        # is looked at more often when due, and a mailbox that joins is synced at once.
        interval = self.config.poll_interval * (10 if self.config.streaming else 1)
        tick = min(interval, self.config.directory_refresh)
        waited = 0.0
        while not stop.wait(tick):
            waited += tick
            if waited >= interval:
                waited = 0.0
                self._safe(lambda: self.scan_once())
            else:
                self._safe(self._sync_joined)
            self._follow_streams(stop, threads)
        for mb in list(self._stream_stops):
            self._stop_stream(mb)
        for t in threads:
            t.join(timeout=5)

    def _sync_joined(self) -> None:
        added, _removed = self.follow_roster()
        if added:
            self.scan_once(only=added)

    def _follow_streams(self, stop: threading.Event, threads: list[threading.Thread]) -> None:
        """One stream per mailbox held on the roster: started as one joins, stopped as it leaves."""
        if not self.config.streaming:
            return
        want = {mb for mb in self.mailboxes if self.env.intake.holds(self.name, mb)}
        for mb in [m for m in self._stream_stops if m not in want]:
            self._stop_stream(mb)
        for mb in sorted(want - set(self._stream_stops)):
            mine = self._stream_stops[mb] = threading.Event()
            t = threading.Thread(target=self._stream_loop, args=(mb, stop, mine), name=f"ews-stream-{mb}", daemon=True)
            t.start()
            threads.append(t)
        threads[:] = [t for t in threads if t.is_alive()]

    def _stop_stream(self, mailbox: str) -> None:
        self._stream_stops.pop(mailbox).set()
        svc = self.streams.get(mailbox)
        if svc is not None:
            interrupt_stream(svc)

    def _safe(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except GatewayError as exc:
            self.last_error = str(exc)
            self.connected = not isinstance(exc, EwsError) and self.connected
            log.warning("ews %s: %s", self.name, exc)
        except Exception as exc:  # the ledger (locked, restarting), a bug: the poll goes on, the error shows
            self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.warning("ews %s: %s", self.name, self.last_error, exc_info=True)

    def _stream_loop(self, mailbox: str, stop: threading.Event, mine: threading.Event | None = None) -> None:
        mine = mine or threading.Event()  # set when the mailbox leaves the roster
        backoff = 0.5
        while not (stop.is_set() or mine.is_set()):
            try:
                acct = self.session.streaming_account(mailbox)
                folders = [self.folder(mailbox, n) for n in self.config.folders]
                sid = self.session.call(
                    lambda: FolderCollection(account=acct, folders=folders).subscribe_to_streaming(),  # noqa: B023 (called at once)
                    f"subscribing to {mailbox}",
                )
                svc = GetStreamingEvents(account=acct)
                self.streams[mailbox] = svc
                self._stream_sync(mailbox)  # what arrived while no stream was open
                self.connected, self.last_error, backoff = True, "", 0.5
                for _notification in svc.call(subscription_ids=[sid], connection_timeout=STREAM_MINUTES):
                    if stop.is_set() or mine.is_set():
                        break
                    self._stream_sync(mailbox)
            except Exception as exc:  # a dropped stream, a busy server, a bug: reconnect, never die
                if stop.is_set() or mine.is_set():
                    break
                self.last_error = f"{mailbox}: stream: {exc}"
                log.info("ews %s: stream for %s ended (%s); reconnecting in %.1fs", self.name, mailbox, exc, backoff)
            finally:
                self.streams.pop(mailbox, None)
            if stop.wait(backoff) or mine.is_set():
                break
            backoff = min(backoff * 2, 30)

    def _stream_sync(self, mailbox: str) -> None:
        n = self.sync_mailbox(mailbox)
        health = self.health.of.get(mailbox)  # None: it left the roster meanwhile
        if health is not None:
            health.synced(n)

    def status(self) -> dict[str, Any]:
        held = len(self._stream_stops)  # a stream for every mailbox held, none yet before `run`
        push = self.config.streaming and held > 0 and len(self.streams) == held
        folders: dict[str, Any] = {}
        for name in self.config.folders:
            pairs = [(mb, self.stats[(mb, name)]) for mb in self.mailboxes if (mb, name) in self.stats]
            stats = [s for _mb, s in pairs]
            last = max((s.last_sync for s in stats if s.last_sync), default=None)
            folders[name] = {
                "mode": "push" if push else "poll",
                "connected": self.connected,
                "last_sync": last.isoformat() if last else None,
                "items": sum(s.items for s in stats),
                "cursor": ", ".join(f"{mb}:{s.cursor}" for mb, s in pairs if s.cursor) or None,
                "last_error": next((s.last_error for s in stats if s.last_error), ""),
            }
        return {
            "type": self.type,
            "connected": self.connected,
            "mode": "push" if push else "poll",
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "last_error": self.last_error,
            "mailboxes": self.mailboxes,
            "mailbox_health": self.health.doc(),
            **self.roster.status(),
            "streams": sorted(self.streams),
            "resyncs": self.resyncs,
            "throttled": self.session.throttle_count,
            "last_throttle": self.session.last_throttle,
            "folders": folders,
        }


def interrupt_stream(svc: Any) -> None:
    """End a GetStreamingEvents read from another thread. exchangelib's `stop_streaming` closes
    the response, which waits for the reader's lock, so it blocks until the next notification
    (minutes); shutting the socket down wakes the reader at once with an end of stream."""
    response = getattr(svc, "_streaming_response", None)
    conn = getattr(getattr(response, "raw", None), "connection", None)
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
        return
    threading.Thread(target=_stop_quietly, args=(svc,), name="ews-stream-stop", daemon=True).start()


def _stop_quietly(svc: Any) -> None:
    with contextlib.suppress(Exception):  # a dead stream needs no stopping
        svc.stop_streaming()


def make(config: EwsConfig, env: SourceEnv) -> tuple[EwsSource, EwsWriteback]:
    if not (config.url or config.server):
        raise ConfigError(f"sources: {config.name}: give url (…/EWS/Exchange.asmx) or server; autodiscover is not used")
    source = EwsSource(config, env)
    return source, EwsWriteback(source)
