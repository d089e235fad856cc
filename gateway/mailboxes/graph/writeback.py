"""Graph write-back: tags as categories (`mailboxes/categories.py`: PATCH), then the move
(POST …/move).

Ids are immutable, so the copy keeps its key in the ledger after a move.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import Retryable
from gateway.mailboxes.base import SourceRef
from gateway.mailboxes.categories import CategoryWriteback


class GraphItems:
    """A message as Graph serves it; the item read back is its URL."""

    noun = "message"

    def __init__(self, source: Any) -> None:
        self.source = source

    def read(self, ref: SourceRef) -> tuple[list[str], str] | None:
        url = f"/users/{ref.account}/messages/{ref.item_key}"
        r = self.source.client.request("GET", url, f"reading {ref.label()}", params={"$select": "categories"})
        if r.status_code == 404:
            return None
        return list(r.json().get("categories") or []), url

    def write(self, ref: SourceRef, url: str, categories: list[str]) -> bool:
        r = self.source.client.request("PATCH", url, f"setting categories on {ref.label()}", json={"categories": categories})
        if r.status_code == 404:
            return False
        if r.status_code >= 400:
            raise Retryable(f"Graph {r.status_code} setting categories on {ref.label()}")
        return True

    def move(self, ref: SourceRef, url: str, folder: str) -> SourceRef:
        dest = self.source.folder_id(ref.account, folder, create=True)
        r = self.source.client.request("POST", f"{url}/move", f"moving {ref.label()} to {folder}", json={"destinationId": dest})
        if r.status_code >= 400:
            raise Retryable(f"Graph {r.status_code} moving {ref.label()}")
        return SourceRef(ref.source, ref.account, folder, r.json().get("id") or ref.item_key)


class GraphWriteback(CategoryWriteback[str]):
    def __init__(self, source: Any) -> None:
        super().__init__(GraphItems(source))
        self.source = source

    def fetch(self, ref: SourceRef) -> bytes | None:
        """The copy's MIME content again (`/messages/{id}/$value`; above max_message_size its
        headers) for a gateway that took over a mailbox whose mail another machine spooled;
        None when the message is no longer there."""
        raw, _size = self.source._mime(ref.account, ref.item_key)
        return raw
