"""Each mailbox's health in a source reaching many: one mailbox failing never stops the others,
and `status` says which one fails and why (`mailbox_health`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class MailboxState(StrEnum):
    WAITING = "waiting"  # on the roster, not synced yet
    WATCHING = "watching"  # its last sync went through
    ERROR = "error"  # its last sync failed (`last_error` says why); retried at the next turn
    ELSEWHERE = "elsewhere"  # another gateway sharing the ledger holds it


@dataclass
class MailboxHealth:
    state: MailboxState = MailboxState.WAITING
    last_sync: datetime | None = None
    last_error: str = ""
    items: int = 0

    def synced(self, items: int) -> None:
        self.state, self.last_error, self.last_sync = MailboxState.WATCHING, "", datetime.now(UTC)
        self.items += items

    def failed(self, error: str) -> None:
        self.state, self.last_error = MailboxState.ERROR, error

    def doc(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "last_error": self.last_error,
            "items": self.items,
        }


class Health:
    """The health of every mailbox on a roster; follows the roster as it changes."""

    def __init__(self) -> None:
        self.of: dict[str, MailboxHealth] = {}

    def follow(self, mailboxes: list[str]) -> tuple[list[str], list[str]]:
        """Track exactly these mailboxes; returns (added, removed)."""
        added = [m for m in mailboxes if m not in self.of]
        removed = [m for m in self.of if m not in mailboxes]
        for m in removed:
            del self.of[m]
        for m in added:
            self.of[m] = MailboxHealth()
        return added, removed

    def get(self, mailbox: str) -> MailboxHealth:
        return self.of.setdefault(mailbox, MailboxHealth())

    def failing(self) -> list[str]:
        return [m for m, h in self.of.items() if h.state is MailboxState.ERROR]

    def summary(self) -> str:
        """One line for the source's `last_error` when some (not all) mailboxes fail."""
        bad = [m for m in self.failing() if m in self.of]
        if not bad:
            return ""
        first = self.of[bad[0]].last_error
        return f"{len(bad)} of {len(self.of)} mailboxes failing; {bad[0]}: {first}"

    def doc(self) -> dict[str, Any]:
        return {m: h.doc() for m, h in sorted(dict(self.of).items())}  # a copy: a turn may change it
