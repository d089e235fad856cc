"""EWS write-back: tags as Outlook categories, then the move, after the CRM committed.

Categories are read first and written as a set (`save(update_fields=["categories"])`), so a
repeat is a no-op and categories a user set by hand stay. The item is addressed by its id
alone: the changekey changes with every category write.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from exchangelib import errors as xerr

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.base import Applied, SourceRef, categories_after, tags_after


class EwsWriteback:
    keeps_tags_in_mailbox = True

    def __init__(self, source: Any) -> None:
        self.source = source

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        tags = tags_after(current, add, remove)
        session = self.source.session
        try:
            acct = session.account(ref.account)
            got = session.call(
                lambda: list(acct.fetch(ids=[(ref.item_key, None)], only_fields=["categories"])),
                f"reading the categories of {ref.label()}",
            )
            if not got or isinstance(got[0], xerr.ErrorItemNotFound):
                return Applied(None, tags, "the item is no longer in the mailbox")
            if isinstance(got[0], Exception):
                raise Retryable(f"{ref.label()}: {got[0]}")
            item = got[0]
            have = list(item.categories or [])
            want = categories_after(have, add, remove)
            if want != have:
                item.categories = want or None
                session.call(lambda: item.save(update_fields=["categories"]), f"setting categories on {ref.label()}")
            if not move or move == ref.folder:
                return Applied(ref, tags)
            target = self.source.folder(ref.account, move, create=True)
            session.call(lambda: item.move(target), f"moving {ref.label()} to {move}")
            self.source.moved_in.add(item.id)
            return Applied(SourceRef(ref.source, ref.account, move, item.id), tags)
        except Permanent as exc:  # wrong credentials, no rights: after crm_done, wait and say so
            raise Retryable(str(exc)) from None
