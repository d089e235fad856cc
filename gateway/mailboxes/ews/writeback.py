"""EWS write-back: tags as Outlook categories (`mailboxes/categories.py`), then the move.

Categories are written with `save(update_fields=["categories"])`. The item is addressed by
its id alone: the changekey changes with every category write.
"""

from __future__ import annotations

from typing import Any

from exchangelib import errors as xerr

from gateway.errors import Retryable
from gateway.mailboxes.base import SourceRef
from gateway.mailboxes.categories import CategoryWriteback


class EwsItems:
    noun = "item"

    def __init__(self, source: Any) -> None:
        self.source = source

    def read(self, ref: SourceRef) -> tuple[list[str], Any] | None:
        session = self.source.session
        acct = session.account(ref.account)
        got = session.call(
            lambda: list(acct.fetch(ids=[(ref.item_key, None)], only_fields=["categories"])),
            f"reading the categories of {ref.label()}",
        )
        if not got or isinstance(got[0], xerr.ErrorItemNotFound):
            return None
        if isinstance(got[0], Exception):
            raise Retryable(f"{ref.label()}: {got[0]}")
        return list(got[0].categories or []), got[0]

    def write(self, ref: SourceRef, item: Any, categories: list[str]) -> bool:
        item.categories = categories or None
        self.source.session.call(lambda: item.save(update_fields=["categories"]), f"setting categories on {ref.label()}")
        return True

    def move(self, ref: SourceRef, item: Any, folder: str) -> SourceRef:
        target = self.source.folder(ref.account, folder, create=True)
        self.source.session.call(lambda: item.move(target), f"moving {ref.label()} to {folder}")
        self.source.moved_in.add(item.id)
        return SourceRef(ref.source, ref.account, folder, item.id)


class EwsWriteback(CategoryWriteback[Any]):
    def __init__(self, source: Any) -> None:
        super().__init__(EwsItems(source))
        self.source = source

    def fetch(self, ref: SourceRef) -> bytes | None:
        """The copy's MIME content again (GetItem) for a gateway that took over a mailbox whose
        mail another machine spooled; None when the item is no longer there."""
        session = self.source.session
        acct = session.account(ref.account)
        got = session.call(
            lambda: list(acct.fetch(ids=[(ref.item_key, None)], only_fields=["mime_content"])), f"reading {ref.label()} again"
        )
        if not got or isinstance(got[0], xerr.ErrorItemNotFound):
            return None
        if isinstance(got[0], Exception):
            raise Retryable(f"{ref.label()}: {got[0]}")
        return bytes(got[0].mime_content) if got[0].mime_content is not None else None
