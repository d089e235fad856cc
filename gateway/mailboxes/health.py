"""Each mailbox's health in a source reaching many: one mailbox failing never stops the others,
and `status` says which one fails and why (`mailbox_health`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway.errors import GatewayError, Retryable


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


def sync_each(
    health: Health,
    mailboxes: Iterable[str],
    *,
    holds: Callable[[str], bool],
    sync: Callable[[str], int],
    stopping: threading.Event,
    log: logging.Logger,
    label: str,
) -> int:
    """One turn over the mailboxes this gateway holds, each on its own: one that fails (not
    found, no permission on it) is marked and the others go on. Raises the first failure when
    every mailbox tried failed (the source's own error: credentials, network), and a Retryable
    at once when the gateway is stopping. Returns the items handed over."""
    total, tried, first_error = 0, 0, None
    for mb in mailboxes:
        state = health.get(mb)
        if not holds(mb):
            state.state = MailboxState.ELSEWHERE
            continue
        tried += 1
        try:
            n = sync(mb)
        except GatewayError as exc:
            if isinstance(exc, Retryable) and stopping.is_set():
                raise  # the gateway is stopping: the turn ends here
            state.failed(str(exc))
            log.warning("%s: %s: %s", label, mb, exc)
            first_error = first_error or exc
            continue
        state.synced(n)
        total += n
    if first_error is not None and len(health.failing()) == tried:
        raise first_error
    return total
