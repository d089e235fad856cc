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
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from exchangelib import errors as xerr
from exchangelib.fields import FieldPath
from exchangelib.folders import Folder, FolderCollection
from exchangelib.items import ID_ONLY, Message
from exchangelib.services import GetStreamingEvents, SyncFolderItems

from gateway.errors import ConfigError, GatewayError
from gateway.mailboxes.base import FolderRef, Found, SourceEnv, SourceRef
from gateway.mailboxes.ews.config import EwsConfig
from gateway.mailboxes.ews.session import EwsError, EwsSession
from gateway.mailboxes.ews.writeback import EwsWriteback

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
        self._locks = {mb: threading.Lock() for mb in self.session.mailboxes}
        self.stats = {(mb, f): FolderStat() for mb in self.session.mailboxes for f in cfg.folders}
        self.streams: dict[str, Any] = {}  # mailbox → GetStreamingEvents service while connected
        self.moved_in: set[str] = set()  # item ids the write-back moved into a folder: not new mail
        self.connected = False
        self.last_sync: datetime | None = None
        self.last_error = ""
        self.resyncs = 0

    @property
    def mailboxes(self) -> list[str]:
        return self.session.mailboxes

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
                    self.stats[(mailbox, name)].last_error = str(exc)
                    raise
        return n

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
        total = 0
        for mb in self.mailboxes:
            total += self.sync_mailbox(mb)
        self.connected, self.last_error = True, ""
        return total

    def pending_count(self) -> int:
        return 0  # unknown until SyncFolderItems answers

    # ---- running ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.session.stop = stop
        self._safe(lambda: self.scan_once())
        threads = []
        if self.config.streaming:
            for mb in self.mailboxes:
                t = threading.Thread(target=self._stream_loop, args=(mb, stop), name=f"ews-stream-{mb}", daemon=True)
                t.start()
                threads.append(t)
        # Safety net: with push working this is rare; without it, it is the poll.
        interval = self.config.poll_interval * (10 if self.config.streaming else 1)
        while not stop.wait(interval):
            self._safe(lambda: self.scan_once())
        for svc in list(self.streams.values()):
            with contextlib.suppress(Exception):  # a dead stream needs no stopping
                svc.stop_streaming()  # unblocks the reader at once
        for t in threads:
            t.join(timeout=5)

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

    def _stream_loop(self, mailbox: str, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            if not self.env.intake.holds(self.name, mailbox):  # not ours now: no stream, ask again soon
                stop.wait(1.0)
                continue
            try:
                acct = self.session.streaming_account(mailbox)
                folders = [self.folder(mailbox, n) for n in self.config.folders]
                sid = self.session.call(
                    lambda: FolderCollection(account=acct, folders=folders).subscribe_to_streaming(),  # noqa: B023 (called at once)
                    f"subscribing to {mailbox}",
                )
                svc = GetStreamingEvents(account=acct)
                self.streams[mailbox] = svc
                self.sync_mailbox(mailbox)  # what arrived while no stream was open
                self.connected, self.last_error, backoff = True, "", 0.5
                for _notification in svc.call(subscription_ids=[sid], connection_timeout=STREAM_MINUTES):
                    if stop.is_set() or not self.env.intake.holds(self.name, mailbox):
                        break
                    self.sync_mailbox(mailbox)
            except Exception as exc:  # a dropped stream, a busy server, a bug: reconnect, never die
                if stop.is_set():
                    break
                self.last_error = f"{mailbox}: stream: {exc}"
                log.info("ews %s: stream for %s ended (%s); reconnecting in %.1fs", self.name, mailbox, exc, backoff)
            finally:
                self.streams.pop(mailbox, None)
            if stop.wait(backoff):
                break
            backoff = min(backoff * 2, 30)

    def status(self) -> dict[str, Any]:
        push = self.config.streaming and len(self.streams) == len(self.mailboxes)
        folders: dict[str, Any] = {}
        for name in self.config.folders:
            stats = [self.stats[(mb, name)] for mb in self.mailboxes if (mb, name) in self.stats]
            last = max((s.last_sync for s in stats if s.last_sync), default=None)
            folders[name] = {
                "mode": "push" if push else "poll",
                "connected": self.connected,
                "last_sync": last.isoformat() if last else None,
                "items": sum(s.items for s in stats),
                "cursor": ", ".join(f"{mb}:{s.cursor}" for mb, s in zip(self.mailboxes, stats, strict=False) if s.cursor) or None,
                "last_error": next((s.last_error for s in stats if s.last_error), ""),
            }
        return {
            "type": self.type,
            "connected": self.connected,
            "mode": "push" if push else "poll",
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "last_error": self.last_error,
            "mailboxes": self.mailboxes,
            "streams": sorted(self.streams),
            "resyncs": self.resyncs,
            "throttled": self.session.throttle_count,
            "last_throttle": self.session.last_throttle,
            "folders": folders,
        }


def make(config: EwsConfig, env: SourceEnv) -> tuple[EwsSource, EwsWriteback]:
    if not (config.url or config.server):
        raise ConfigError(f"sources: {config.name}: give url (…/EWS/Exchange.asmx) or server; autodiscover is not used")
    source = EwsSource(config, env)
    return source, EwsWriteback(source)
