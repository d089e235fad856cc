"""What the watched folders of one IMAP mailbox hold now, for `reconcile`.

One connection, one SELECT (to learn whether the folder keeps keywords) and one
UID SEARCH per folder, then UID FETCH of FLAGS and the Message-ID header in batches of
`BATCH` UIDs: a 10,000-message folder is a handful of round trips, not one per message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.errors import Retryable
from gateway.mailboxes.base import FolderListing, FolderRef, Held
from gateway.mailboxes.imap.account import ImapAccount
from gateway.mailboxes.imap.conn import NETWORK_ERRORS, logout_quietly, resolve_folder, server_folders

BATCH = 5000  # UIDs per FETCH: one answer of a few hundred kB
_MID = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_SYSTEM = b"\\"  # \Seen, \Answered…: flags of the protocol, never a tag


def listings(
    src: ImapAccount,
    client: IMAPClient,
    folder: str | None,
    since: datetime | None,
    progress: Callable[[str, int, int], None] | None,
    keywords: bool,
) -> Iterator[FolderListing]:
    """Each watched folder (or only `folder`) on this logged-in `client`; logs it out at the end.
    `keywords`: whether the server keeps keywords (else `Held.marks` is None: ledger only)."""
    try:
        on_server = server_folders(client)
        for name in src.config.folders:
            if folder is not None and name != folder:
                continue
            server = resolve_folder(name, on_server)
            if server is None:
                yield FolderListing(
                    FolderRef(src.name, src.account, name), (), note=f"folder {name!r} does not exist on the server"
                )
                continue
            try:
                listed = _one(src, client, name, server, since, progress, keywords)
            except (*NETWORK_ERRORS, IMAPClientError) as exc:  # the connection failed: try again later
                raise Retryable(f"imap {src.name}: cannot list {name}: {exc}") from exc
            yield listed
    finally:
        logout_quietly(client)


def _one(
    src: ImapAccount,
    client: IMAPClient,
    name: str,
    server: str,
    since: datetime | None,
    progress: Callable[[str, int, int], None] | None,
    keywords: bool,
) -> FolderListing:
    # SELECT, not EXAMINE: a read-only view answers PERMANENTFLAGS () whatever the folder takes.
    # Nothing is written: FLAGS and BODY.PEEK set no \Seen, and LOGOUT (never CLOSE) expunges nothing.
    info = client.select_folder(server)
    uv = int(info[b"UIDVALIDITY"])
    takes_keywords = keywords and b"\\*" in info.get(b"PERMANENTFLAGS", ())
    uids = sorted(client.search(["SINCE", since.date()] if since is not None else ["ALL"])) if info.get(b"EXISTS") else []
    label = f"{src.name}:{src.account}/{name}"
    items: list[Held] = []
    for i in range(0, len(uids), BATCH):
        chunk = uids[i : i + BATCH]
        for uid, d in sorted(client.fetch(chunk, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).items()):
            marks = frozenset(f.decode() for f in d.get(b"FLAGS", ()) if not f.startswith(_SYSTEM)) if takes_keywords else None
            items.append(Held(src.ref(name, uv, uid), message_id_of(d.get(_MID, b"")), marks))
        if progress is not None:
            progress(label, min(i + BATCH, len(uids)), len(uids))
    return FolderListing(FolderRef(src.name, src.account, name), tuple(items), uv)


def message_id_of(header: bytes) -> str:
    """`Message-ID: <x@y>` (folded or not) → `<x@y>`; "" when the mail has none."""
    text = bytes(header).decode("ascii", "replace").replace("\r\n", "").replace("\n", "")
    _, _, value = text.partition(":")
    return value.strip()
