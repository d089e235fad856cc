"""Maildir write-back: tags stay in the ledger (a Maildir has no keywords a user's client
would show); `move` renames the file into the target folder's cur/."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence, Set
from pathlib import Path

from gateway.mailboxes.base import Applied, SourceRef, tags_after
from gateway.mailboxes.maildir.layout import MaildirLayout


class MaildirWriteback:
    """Tags in the ledger; `move` renames the file into the target folder's cur/."""

    keeps_tags_in_mailbox = False

    def __init__(self, layout: MaildirLayout, folders: Sequence[str], mark_seen: Callable[[str, str], None]) -> None:
        self.layout = layout
        self.folders = folders  # where a copy the user moved meanwhile is looked for
        self.mark_seen = mark_seen  # the source's: a copy moved into a watched folder is not new mail

    def fetch(self, ref: SourceRef) -> Path | None:
        """The copy's file in its folder again (another gateway spooled it elsewhere)."""
        return self.layout.locate(ref.folder, ref.item_key)

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        tags = tags_after(current, add, remove)
        if not move or move == ref.folder:
            return Applied(ref, tags)
        layout = self.layout
        path = layout.locate(ref.folder, ref.item_key)
        if path is None:
            for folder in self.folders:
                path = layout.locate(folder, ref.item_key)
                if path:
                    break
        if path is None:
            return Applied(None, tags, "the file is no longer in any watched folder")
        layout.confine(path)
        target = layout.confine(layout.ensure(move) / "cur" / path.name)
        os.rename(path, target)
        # The target may be watched too: the copy there is the same one, already handled.
        self.mark_seen(move, ref.item_key)
        return Applied(SourceRef(ref.source, ref.account, move, ref.item_key, 0), tags)
