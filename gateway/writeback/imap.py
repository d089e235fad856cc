"""IMAP write-back: keywords (or Gmail labels) and `move`, on one connection per account.

Idempotent (`+FLAGS`, `-FLAGS`). A STORE on a UID that is gone answers OK with no FETCH, so
the reply is read: a message the user moved away before it was tagged is looked up by
Message-ID in the watched folders and tagged there, else it is `done_untagged`. `move` uses
MOVE, else COPY + \\Deleted + UID EXPUNGE of that one UID (never a plain EXPUNGE).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Set
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.errors import GatewayError, Retryable
from gateway.sources.base import SourceRef
from gateway.sources.imap_conn import NETWORK_ERRORS, ServerInfo, close_quietly, connect, resolve_folder, server_folders
from gateway.writeback.base import Applied, tags_after
from gateway.writeback.keywords import keywords_for

if TYPE_CHECKING:
    from gateway.sources.imap import ImapSource

log = logging.getLogger("gateway.imap")
_COPYUID = re.compile(rb"COPYUID (\d+) [\d:,]+ (\d+)")


class ImapWriteback:
    keeps_tags_in_mailbox = True

    def __init__(self, source: ImapSource) -> None:
        self.source = source
        self.config = source.config
        self.overrides = dict(source.env.config.tags.keywords)
        self._lock = threading.Lock()
        self._client: IMAPClient | None = None
        self._info: ServerInfo | None = None
        self._selected: str | None = None
        self._select_info: dict[bytes, Any] = {}
        self._warned_no_keywords = False

    # ---- the one connection ---------------------------------------------------------------

    def _conn(self) -> IMAPClient:
        if self._client is None:
            self._client, self._info = connect(self.config)
            self._selected = None
        return self._client

    def _drop(self) -> None:
        close_quietly(self._client)
        self._client, self._selected = None, None

    def _select(self, server: str) -> dict[bytes, Any]:
        c = self._conn()
        if self._selected != server:
            self._select_info = c.select_folder(server)  # read-write; we never CLOSE (which would expunge)
            self._selected = server
        return self._select_info

    def _server(self, folder: str) -> str | None:
        name = self.source.server_name(folder)
        if name is None:
            name = resolve_folder(folder, server_folders(self._conn()))
        return name

    # ---- apply ----------------------------------------------------------------------------

    def apply(self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str],
              move: str | None, message_id: str) -> Applied:
        with self._lock:
            try:
                return self._apply(ref, current, add, remove, move, message_id)
            except (GatewayError,) as exc:
                self._drop()
                raise Retryable(f"imap {self.source.name}: cannot tag {ref.label()}: {exc}") from exc
            except (*NETWORK_ERRORS, IMAPClientError) as exc:
                self._drop()
                raise Retryable(f"imap {self.source.name}: cannot tag {ref.label()}: {exc}") from exc

    def _apply(self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str],
               move: str | None, message_id: str) -> Applied:
        tags = tags_after(current, add, remove)
        where = self._store_at(ref, add, remove) if ref.item_key.isdigit() else None
        if where is None:
            found = self._find(message_id)
            if found is None:
                return Applied(None, tags, f"no message with Message-ID {message_id} in the watched folders")
            where = found
            self._store(where, add, remove)
            if where != ref and self.source.env.ledger.location_at(where) is not None:  # its own copy: tagged as that one
                return Applied(None, tags, f"moved by the user to {where.folder}, handled there as its own copy")
        if move and move != where.folder:
            where = self._move(where, move)
        return Applied(where, tags)

    def _mode(self, info: dict[bytes, Any]) -> str:
        assert self._info is not None
        if self._info.gmail:
            return "labels"
        if b"\\*" in info.get(b"PERMANENTFLAGS", ()):
            return "keywords"
        if not self._warned_no_keywords:
            self._warned_no_keywords = True
            log.warning("imap %s: the server takes no keywords: tags are kept in the ledger only", self.source.name)
        return "none"

    def _store_at(self, ref: SourceRef, add: Set[str], remove: Set[str]) -> SourceRef | None:
        """Set the tags on the copy at `ref`; None when it is not there any more."""
        server = self._server(ref.folder)
        if server is None:
            return None
        info = self._select(server)
        if int(info[b"UIDVALIDITY"]) != ref.uidvalidity:
            self._selected = None  # our view may be older than the folder: look again
            info = self._select(server)
            if int(info[b"UIDVALIDITY"]) != ref.uidvalidity:
                return None  # the folder was recreated: the UID names another message, or none
        if self._store(ref, add, remove, selected=True):
            return ref
        # The session's view may predate the message (a server only shows new mail to a
        # selected session at a sync point): sync with NOOP and try once more before
        # believing the message is gone.
        self._conn().noop()
        return ref if self._store(ref, add, remove, selected=True) else None

    def _store(self, ref: SourceRef, add: Set[str], remove: Set[str], selected: bool = False) -> bool:
        c = self._conn()
        if not selected:
            server = self._server(ref.folder)
            if server is None:
                return False
            self._select(server)
        uid = int(ref.item_key)
        mode = self._mode(self._select_info)
        replies: list[Any] = []
        if mode == "keywords":
            kw_add, kw_remove = keywords_for(add, self.overrides), keywords_for(remove, self.overrides)
            if kw_add:
                replies.append(c.add_flags([uid], kw_add))
            if kw_remove:
                replies.append(c.remove_flags([uid], kw_remove))
        elif mode == "labels":
            if add:
                replies.append(c.add_gmail_labels([uid], sorted(add)))
            if remove:
                replies.append(c.remove_gmail_labels([uid], sorted(remove)))
        if not replies:  # nothing to store (or nowhere to store it): is it still there?
            replies.append(c.fetch([uid], ["UID"]))
        # A STORE on a UID that is gone answers OK without a FETCH: the reply decides.
        return all(r is not None and uid in r for r in replies)

    def _find(self, message_id: str) -> SourceRef | None:
        """The copy the user moved: by Message-ID in the watched folders."""
        if not message_id or "@crm-gateway>" in message_id:
            return None
        for folder in self.config.folders:
            server = self._server(folder)
            if server is None:
                continue
            self._selected = None  # a fresh SELECT: a view that knows every message there now
            info = self._select(server)
            uv = int(info[b"UIDVALIDITY"])
            for uid in sorted(self._conn().search(["HEADER", "Message-ID", message_id])):
                return self.source.ref(folder, uv, uid)
        return None

    def _move(self, ref: SourceRef, target: str) -> SourceRef:
        assert self._info is not None
        c = self._conn()
        server = self._server(target)
        if server is None:
            c.create_folder(target)
            server = target
        self._select(self._server(ref.folder) or ref.folder)
        uid = int(ref.item_key)
        with self.source.moved_lock:  # the target's own scan must not take our copy for a new one
            if self._info.move:
                c._imap.untagged_responses.pop("COPYUID", None)
                c.move([uid], server)
                codes = c._imap.untagged_responses.pop("COPYUID", [])
                reply = b" ".join(b"COPYUID " + (x if isinstance(x, bytes) else str(x).encode()) for x in codes)
            elif self._info.uidplus:
                reply = c.copy([uid], server) or b""
                c.add_flags([uid], [b"\\Deleted"], silent=True)
                c.uid_expunge([uid])  # only this UID, never a plain EXPUNGE
            else:
                log.error("imap %s: cannot move %s: the server has neither MOVE nor UIDPLUS", self.source.name, ref.label())
                return ref
            m = _COPYUID.search(reply if isinstance(reply, bytes) else str(reply).encode())
            if m is None:
                return SourceRef(ref.source, ref.account, target, f"moved:{ref.item_key}", 0)
            new = SourceRef(ref.source, ref.account, target, m.group(2).decode(), int(m.group(1)))
            self.source.moved_in.setdefault((target, new.uidvalidity), set()).add(int(new.item_key))
        return new
