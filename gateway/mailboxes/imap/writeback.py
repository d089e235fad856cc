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
from collections.abc import Sequence, Set
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.errors import GatewayError, Retryable
from gateway.mailboxes.base import Applied, SourceRef, TagRequest, tags_after
from gateway.mailboxes.imap.account import ImapAccount
from gateway.mailboxes.imap.conn import NETWORK_ERRORS, ServerInfo, close_quietly, connect, resolve_folder, server_folders
from gateway.mailboxes.imap.keywords import keywords_for

log = logging.getLogger("gateway.imap")
_COPYUID = re.compile(rb"COPYUID (\d+) [\d:,]+ (\d+)")


class ImapWriteback:
    keeps_tags_in_mailbox = True

    def __init__(self, source: ImapAccount) -> None:
        self.source = source
        self.config = source.config
        self.overrides = dict(source.env.tag_keywords)
        self._lock = threading.Lock()
        self._client: IMAPClient | None = None
        self._info: ServerInfo | None = None
        self._selected: str | None = None
        self._select_info: dict[bytes, Any] = {}

    # ---- the one connection ---------------------------------------------------------------

    def _conn(self) -> IMAPClient:
        if self._client is None:
            self._client, self._info = connect(self.config)
            self._selected = None
        return self._client

    def close(self) -> None:
        """Close the connection (the next write-back opens one again)."""
        with self._lock:
            self._drop()

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

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        with self._lock:
            try:
                return self._apply(ref, current, add, remove, move, message_id)
            except (GatewayError, *NETWORK_ERRORS, IMAPClientError) as exc:
                raise self._lost(ref, exc) from exc

    def fetch(self, ref: SourceRef) -> bytes | None:
        """The copy's bytes again (`BODY.PEEK[]`, never `\\Seen`) for a gateway that took over a
        mailbox whose mail another machine spooled; None when that UID is no longer there."""
        with self._lock:
            try:
                server = self._server(ref.folder)
                if server is None or int(self._select(server).get(b"UIDVALIDITY", 0)) != ref.uidvalidity:
                    return None
                got = self._conn().fetch([int(ref.item_key)], ["BODY.PEEK[]"]).get(int(ref.item_key))
                return bytes(got[b"BODY[]"]) if got and b"BODY[]" in got else None
            except (GatewayError, *NETWORK_ERRORS, IMAPClientError) as exc:
                raise self._lost(ref, exc) from exc

    def apply_many(self, requests: Sequence[TagRequest]) -> list[Applied | Retryable]:
        """`apply` for a batch: the copies that share a folder and the same tags get one UID
        STORE for all of them; a copy that needs more (a move, or it is no longer at its UID:
        looked up by Message-ID) is done on its own. A failure is that copy's Retryable, in
        its place."""
        out: list[Applied | Retryable | None] = [None] * len(requests)
        not_there: set[int] = set()  # stored at their UID in vain: look them up by Message-ID
        groups: dict[tuple[str, int, frozenset[str], frozenset[str]], list[int]] = {}
        for n, r in enumerate(requests):
            if not r.move and r.ref.item_key.isdigit():
                groups.setdefault((r.ref.folder, r.ref.uidvalidity, frozenset(r.add), frozenset(r.remove)), []).append(n)
        with self._lock:
            for (folder, uidvalidity, add, remove), ns in groups.items():
                try:
                    stored = self._store_uids(folder, uidvalidity, [int(requests[n].ref.item_key) for n in ns], add, remove)
                except (GatewayError, *NETWORK_ERRORS, IMAPClientError) as exc:
                    for n in ns:
                        out[n] = self._lost(requests[n].ref, exc)
                    continue
                for n in ns:
                    r = requests[n]
                    if int(r.ref.item_key) in stored:
                        out[n] = Applied(r.ref, tags_after(r.current, r.add, r.remove))
                    else:
                        not_there.add(n)
            for n, r in enumerate(requests):
                if out[n] is None:  # a move, or a copy that moved away
                    try:
                        out[n] = self._apply(r.ref, r.current, r.add, r.remove, r.move, r.message_id, not_at_ref=n in not_there)
                    except (GatewayError, *NETWORK_ERRORS, IMAPClientError) as exc:
                        out[n] = self._lost(r.ref, exc)
        return out  # type: ignore[return-value]

    def _lost(self, ref: SourceRef, exc: BaseException) -> Retryable:
        """The connection failed: drop it (the next call connects again) and say so."""
        self._drop()
        return Retryable(f"imap {self.source.name}: cannot tag {ref.label()}: {exc}")

    def _apply(
        self,
        ref: SourceRef,
        current: Set[str],
        add: Set[str],
        remove: Set[str],
        move: str | None,
        message_id: str,
        *,
        not_at_ref: bool = False,
    ) -> Applied:
        """`not_at_ref`: a STORE at the copy's UID was just answered without it."""
        tags = tags_after(current, add, remove)
        where = self._store_at(ref, add, remove) if ref.item_key.isdigit() and not not_at_ref else None
        if where is None:
            found = self._find(message_id)
            if found is None:
                return Applied(None, tags, f"no message with Message-ID {message_id} in the watched folders")
            where = found
            self._store(where, add, remove)
            if where != ref and self.source.env.intake.is_known(where):  # its own copy: tagged as that one
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
        if self._selected is not None:
            self.source.note_no_keywords(self._selected, info.get(b"PERMANENTFLAGS", ()))  # once per folder
        return "none"

    def _store_at(self, ref: SourceRef, add: Set[str], remove: Set[str]) -> SourceRef | None:
        """Set the tags on the copy at `ref`; None when it is not there any more."""
        return (
            ref if int(ref.item_key) in self._store_uids(ref.folder, ref.uidvalidity, [int(ref.item_key)], add, remove) else None
        )

    def _store(self, ref: SourceRef, add: Set[str], remove: Set[str]) -> bool:
        """Set the tags on a copy found just now (its folder's view is fresh)."""
        server = self._server(ref.folder)
        if server is None:
            return False
        self._select(server)
        return int(ref.item_key) in self._store_selected([int(ref.item_key)], add, remove)

    def _store_uids(self, folder: str, uidvalidity: int, uids: list[int], add: Set[str], remove: Set[str]) -> set[int]:
        """Set the tags on these UIDs of a folder, one STORE for all; the UIDs the server
        confirmed (none when the folder was recreated since: the UIDs name other messages)."""
        server = self._server(folder)
        if server is None:
            return set()
        info = self._select(server)
        if int(info[b"UIDVALIDITY"]) != uidvalidity:
            self._selected = None  # our view may be older than the folder: look again
            info = self._select(server)
            if int(info[b"UIDVALIDITY"]) != uidvalidity:
                return set()
        stored = self._store_selected(uids, add, remove)
        missing = [u for u in uids if u not in stored]
        if missing:
            # The session's view may predate a message (a server shows new mail to a selected
            # session only at a sync point): sync with NOOP and try once more before believing
            # it is gone.
            self._conn().noop()
            stored |= self._store_selected(missing, add, remove)
        return stored

    def _store_selected(self, uids: list[int], add: Set[str], remove: Set[str]) -> set[int]:
        """STORE in the selected folder, one command for all the UIDs; the UIDs it confirmed."""
        c = self._conn()
        mode = self._mode(self._select_info)
        replies: list[Any] = []
        if mode == "keywords":
            kw_add, kw_remove = keywords_for(add, self.overrides), keywords_for(remove, self.overrides)
            if kw_add:
                replies.append(c.add_flags(uids, kw_add))
            if kw_remove:
                replies.append(c.remove_flags(uids, kw_remove))
        elif mode == "labels":
            if add:
                replies.append(c.add_gmail_labels(uids, sorted(add)))
            if remove:
                replies.append(c.remove_gmail_labels(uids, sorted(remove)))
        if not replies:  # nothing to store (or nowhere to store it): is it still there?
            replies.append(c.fetch(uids, ["UID"]))
        # A STORE on a UID that is gone answers OK without a FETCH for it: the reply decides.
        return {uid for uid in uids if all(r is not None and uid in r for r in replies)}

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
