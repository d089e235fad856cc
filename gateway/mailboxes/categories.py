"""Tags as Outlook categories, the write-back Exchange (EWS) and Microsoft Graph share.

The item's categories are read first and written as a set only where they change, so a
repeat writes nothing and categories a user set by hand stay; then the item moves. It runs
after the CRM committed: a refusal (wrong credentials, no rights) is retried, never a
quarantine. Each protocol says how it reads, writes and moves one item (`CategoryItems`).
"""

from __future__ import annotations

from collections.abc import Set
from typing import Generic, Protocol, TypeVar

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.base import Applied, SourceRef, categories_after, tags_after

Item = TypeVar("Item")


class CategoryItems(Protocol[Item]):
    """One protocol's calls on one item; `Item` is what it read and writes back."""

    noun: str  # what the protocol calls an item, for the "no longer in the mailbox" note

    def read(self, ref: SourceRef) -> tuple[list[str], Item] | None:
        """The item's categories in their order, and the item; None: it is gone."""
        ...

    def write(self, ref: SourceRef, item: Item, categories: list[str]) -> bool:
        """Set the item's categories to `categories`; False: it is gone."""
        ...

    def move(self, ref: SourceRef, item: Item, folder: str) -> SourceRef:
        """Move the item into `folder` (made if missing); where it is now."""
        ...


class CategoryWriteback(Generic[Item]):
    keeps_tags_in_mailbox = True

    def __init__(self, items: CategoryItems[Item]) -> None:
        self.items = items

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        tags = tags_after(current, add, remove)
        gone = Applied(None, tags, f"the {self.items.noun} is no longer in the mailbox")
        try:
            got = self.items.read(ref)
            if got is None:
                return gone
            have, item = got
            want = categories_after(have, add, remove)
            if want != have and not self.items.write(ref, item, want):
                return gone
            if not move or move == ref.folder:
                return Applied(ref, tags)
            return Applied(self.items.move(ref, item, move), tags)
        except Permanent as exc:  # after crm_done nothing quarantines: wait and say so
            raise Retryable(str(exc)) from None
