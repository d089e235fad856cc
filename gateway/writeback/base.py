"""The Writeback seam and the ledger-only write-back (Maildir, files, SMTP)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Protocol

from gateway.sources.base import SourceRef


@dataclass(frozen=True)
class Applied:
    """Where the message is after the write-back (None: gone, so it stays untagged) and its tags."""

    ref: SourceRef | None
    tags: frozenset[str]
    note: str = ""


def tags_after(current: Set[str], add: Set[str], remove: Set[str]) -> frozenset[str]:
    """The tags a message carries once `add` is set and `remove` cleared."""
    return (frozenset(current) | frozenset(add)) - frozenset(remove)


class Writeback(Protocol):
    keeps_tags_in_mailbox: bool

    def apply(self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str],
              move: str | None, message_id: str) -> Applied:
        """Idempotent: set `add`, clear `remove`, then move. Raises Retryable when the mailbox
        cannot be reached. A message no longer at `ref` is looked up by `message_id`."""


class LedgerOnly:
    """Tags kept in the ledger only: the source has nowhere to put them (Maildir, SMTP, files)."""

    keeps_tags_in_mailbox = False

    def apply(self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str],
              move: str | None, message_id: str) -> Applied:
        tags = tags_after(current, add, remove)
        if move and move != ref.folder:
            ref = SourceRef(ref.source, ref.account, move, ref.item_key, ref.uidvalidity)
        return Applied(ref, tags)
