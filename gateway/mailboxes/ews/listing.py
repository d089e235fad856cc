"""What the watched folders of the `ews` source's mailboxes hold now, for `reconcile`.

Per mailbox on the roster and watched folder: one exchangelib query with `only()` the
Message-ID, the categories and the time received. exchangelib sends it as FindItem pages of
`page_size` ids (IndexedPageItemView) and, because FindItem truncates text properties, one
GetItem per chunk of `page_size` ids for those fields: a request per page, never one per
item. Tags are categories (writeback.py), so a copy's marks are its categories as spelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from exchangelib import errors as xerr

from gateway.errors import Retryable
from gateway.mailboxes.base import FolderListing, Held, SourceRef
from gateway.mailboxes.ews.config import EwsConfig
from gateway.mailboxes.ews.session import EwsError, EwsSession
from gateway.mailboxes.roster import Roster, watched_folders


class EwsSource(Protocol):
    """What listing uses of the source (source.py's EwsSource, which imports this module)."""

    name: str
    config: EwsConfig
    session: EwsSession
    roster: Roster

    def folder(self, mailbox: str, name: str, create: bool | None = None) -> Any: ...


FIELDS = ("message_id", "categories", "datetime_received")  # item:InternetMessageId, item:Categories, item:DateTimeReceived


def listings(
    src: EwsSource,
    folder: str | None,
    since: datetime | None,
    progress: Callable[[str, int, int], None] | None,
) -> Iterator[FolderListing]:
    """Each watched folder (or only `folder`) of each mailbox on the roster."""
    for where in watched_folders(src.name, src.roster, src.config.folders, folder):
        mailbox, name = where.account, where.folder
        label = f"{src.name}:{mailbox}/{name}"
        try:
            found = src.folder(mailbox, name, create=False)
            items = src.session.call(partial(_items, src, found, label, since, progress), f"listing {name} in {mailbox}")
        except EwsError as exc:  # missing folder, no rights on that mailbox: said, the others go on
            yield FolderListing(where, (), note=str(exc))
            continue
        yield FolderListing(where, tuple(Held(SourceRef(src.name, mailbox, name, i), m, c) for i, m, c in items))


def _items(
    src: EwsSource, folder: Any, label: str, since: datetime | None, progress: Callable[[str, int, int], None] | None
) -> list[tuple[str, str, frozenset[str]]]:
    qs = folder.all().only(*FIELDS)
    qs.page_size = qs.chunk_size = src.config.page_size
    total = folder.total_count or 0
    out = []
    try:
        for n, item in enumerate(qs, 1):
            if isinstance(item, Exception):
                raise Retryable(f"ews {src.name}: cannot list {label}: {item}")
            received = item.datetime_received
            if since is None or received is None or received >= since:
                out.append((item.id, _mid(item.message_id), frozenset(item.categories or ())))
            if progress is not None and n % src.config.page_size == 0:
                progress(label, n, max(total, n))
    except xerr.ErrorFolderNotFound:
        raise EwsError(f"folder {label} disappeared while it was listed") from None
    if progress is not None:
        progress(label, len(out), len(out))
    return out


def _mid(message_id: str | None) -> str:
    return f"<{message_id.strip().strip('<>')}>" if message_id else ""
