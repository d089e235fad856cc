"""Graph write-back: tags as categories (PATCH), then the move (POST …/move), after the CRM committed.

Ids are immutable, so the copy keeps its key in the ledger after a move.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.base import Applied, SourceRef, categories_after, tags_after


class GraphWriteback:
    keeps_tags_in_mailbox = True

    def __init__(self, source: Any) -> None:
        self.source = source

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        tags = tags_after(current, add, remove)
        client = self.source.client
        url = f"/users/{ref.account}/messages/{ref.item_key}"
        try:
            r = client.request("GET", url, f"reading {ref.label()}", params={"$select": "categories"})
            if r.status_code == 404:
                return Applied(None, tags, "the message is no longer in the mailbox")
            have = list(r.json().get("categories") or [])
            want = categories_after(have, add, remove)
            if want != have:
                r = client.request("PATCH", url, f"setting categories on {ref.label()}", json={"categories": want})
                if r.status_code == 404:
                    return Applied(None, tags, "the message is no longer in the mailbox")
                if r.status_code >= 400:
                    raise Retryable(f"Graph {r.status_code} setting categories on {ref.label()}")
            if not move or move == ref.folder:
                return Applied(ref, tags)
            dest = self.source.folder_id(ref.account, move, create=True)
            r = client.request("POST", f"{url}/move", f"moving {ref.label()} to {move}", json={"destinationId": dest})
            if r.status_code >= 400:
                raise Retryable(f"Graph {r.status_code} moving {ref.label()}")
            return Applied(SourceRef(ref.source, ref.account, move, r.json().get("id") or ref.item_key), tags)
        except Permanent as exc:  # after crm_done nothing quarantines: wait and say so
            raise Retryable(str(exc)) from None
