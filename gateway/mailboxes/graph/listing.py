"""What the watched folders of the `graph` source's mailboxes hold now, for `reconcile`.

Per mailbox on the roster and watched folder: "List messages"
(GET /users/{id}/mailFolders/{id}/messages) with `$select=id,internetMessageId,categories`
and `$top=page_size`, following each page's @odata.nextLink whole (its `$skip` is the
server's own count, not ours to compute), never a request per message. With `since`,
`$filter=receivedDateTime ge …`. Ids are the immutable ones the source records (the client
sends `Prefer: IdType="ImmutableId"`); tags are categories, so a copy's marks are its
categories as they are spelled.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.base import FolderListing, Held, SourceRef
from gateway.mailboxes.graph.config import GraphConfig
from gateway.mailboxes.roster import Roster, watched_folders


class Client(Protocol):
    def request(
        self, method: str, url: str, what: str, attempts: int = 6, permission: str = "Mail.ReadWrite", **kw: Any
    ) -> httpx.Response: ...


class GraphMailSource(Protocol):
    """What listing uses of the source (source.py's GraphMailSource, which imports this module)."""

    name: str
    config: GraphConfig
    roster: Roster

    @property
    def client(self) -> Client: ...

    def folder_id(self, mailbox: str, name: str, create: bool | None = None) -> str: ...


SELECT = "id,internetMessageId,categories"


def listings(
    src: GraphMailSource,
    folder: str | None,
    since: datetime | None,
    progress: Callable[[str, int, int], None] | None,
) -> Iterator[FolderListing]:
    """Each watched folder (or only `folder`) of each mailbox on the roster."""
    for where in watched_folders(src.name, src.roster, src.config.folders, folder):
        mailbox, name = where.account, where.folder
        try:
            fid = src.folder_id(mailbox, name, create=False)
        except Permanent as exc:  # GraphError: a missing folder or mailbox, said; the others go on
            yield FolderListing(where, (), note=str(exc))
            continue
        items = _items(src, mailbox, name, fid, since, progress)
        yield FolderListing(where, tuple(items))


def _items(
    src: GraphMailSource,
    mailbox: str,
    name: str,
    fid: str,
    since: datetime | None,
    progress: Callable[[str, int, int], None] | None,
) -> list[Held]:
    query = {"$select": SELECT, "$top": str(src.config.page_size)}
    if since is not None:
        query["$filter"] = f"receivedDateTime ge {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    link: str | None = f"/users/{mailbox}/mailFolders/{fid}/messages?" + urllib.parse.urlencode(query)
    label = f"{src.name}:{mailbox}/{name}"
    out: list[Held] = []
    while link:
        r = src.client.request("GET", link, f"listing {name} in {mailbox}")
        if r.status_code >= 400:
            raise Retryable(f"graph {src.name}: cannot list {label}: {r.status_code} {r.reason_phrase}")
        doc = r.json()
        for entry in doc.get("value", []):
            ref = SourceRef(src.name, mailbox, name, entry["id"])
            out.append(Held(ref, _mid(entry.get("internetMessageId")), frozenset(entry.get("categories") or ())))
        link = doc.get("@odata.nextLink")
        if progress is not None:
            progress(label, len(out), len(out) + (1 if link else 0))
    return out


def _mid(message_id: str | None) -> str:
    return f"<{message_id.strip().strip('<>')}>" if message_id else ""
