"""The contact sync inside `crm-gateway run`: one supervised task keeps every configured
address book this gateway holds in step with the CRM (gateway/pimsync/).

Each `pimsync.poll` seconds the task asks the CRM's change feed one question (is there a
change after the oldest cursor of the books it holds?) and the ledger another (did a person
choose a value on a conflict?); either starts a round of those books at once, so a CRM change
is in the book within seconds. The books themselves are read every `pimsync.every` seconds.
A book whose round fails is reported (its status: the error in words) and retried after a
pause that doubles from 5 s up to `every`; the other books go on. A stop ends the task after
the round in hand.

Gateways sharing a ledger lease each book as they lease mailboxes (a lease row under the
source name `pimsync:addressbook`, gateway/ledger/pim.py): two gateways never sync one
book at once, and a book whose gateway died is taken over when its lease lapses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway import logs
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.ledger.leases import Mailbox
from gateway.ledger.pim import BOOK_LEASE_SOURCE as LEASE_SOURCE
from gateway.pimsync.book import BookReport
from gateway.pimsync.rounds import PimSync

log = logging.getLogger("gateway.pimsync")
ITEMS = (
    "cards_created",
    "cards_updated",
    "cards_deleted",
    "records_created",
    "records_updated",
    "records_deleted",
    "unlinked",
    "skipped",
)
_FIRST_RETRY = 5.0


def book_leases(config: Config) -> list[Mailbox]:
    return [Mailbox(LEASE_SOURCE, b.name) for b in config.pimsync.addressbooks]


@dataclass
class BookRun:
    """What the task knows of one book; written by the task's thread only, read by status."""

    name: str
    crm_user: str
    rounds: int = 0
    failed_rounds: int = 0
    last_round_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_report: BookReport | None = None
    last_error: str = ""
    failures: int = 0  # in a row: the pause before the next try doubles with each
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*ITEMS, "conflicts"), 0))
    read_due: float = 0.0  # time.monotonic() of the next reading of the book
    retry_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        r = self.last_report
        return {
            "book": self.name,
            "crm_user": self.crm_user,
            "rounds": self.rounds,
            "failed_rounds": self.failed_rounds,
            "last_round_at": self.last_round_at.isoformat() if self.last_round_at else None,
            "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
            "last_round": {k: getattr(r, k) for k in (*ITEMS, "conflicts")} if r else None,
            "totals": dict(self.totals),
            "last_error": self.last_error,
            "failures": self.failures,
        }


class PimSyncTask:
    def __init__(self, config: Config, holds: Callable[[str, str], bool]) -> None:
        self.config = config
        self.holds = holds
        self.every = config.pimsync.every
        self.poll = config.pimsync.poll
        self.books = {b.name: BookRun(b.name, b.crm_user) for b in config.addressbooks()}
        self.last_error = ""  # the task's own (CRM or ledger away): its supervisor restarts it

    def run(self, stop: threading.Event) -> None:
        with PimSync(self.config) as sync:
            self.last_error = ""
            while not stop.is_set():
                due = self._due(sync)
                if due:
                    self._round(sync, due)
                stop.wait(self.poll)

    def failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {logs.redact_urls(str(exc))}"

    def _due(self, sync: PimSync) -> list[str]:
        """The books to sync now: the ones whose reading is due, and the rest when the CRM
        moved or a person chose a conflict's value; none of them waiting out a failure."""
        now = time.monotonic()
        ready = [b.name for b in self.books.values() if b.retry_at <= now and self.holds(LEASE_SOURCE, b.name)]
        due = [n for n in ready if self.books[n].read_due <= now]
        rest = [n for n in ready if n not in due]
        if rest and (self._crm_moved(sync, rest) or sync.pim.chosen_books(rest)):
            due += rest
        return due

    @staticmethod
    def _crm_moved(sync: PimSync, books: Sequence[str]) -> bool:
        oldest = min(sync.pim.cursor(n)[0] for n in books)
        try:
            changes, _ = sync.contacts.changes_since(oldest, limit=1)
        except GatewayError:
            return False  # the CRM away for now: the books' own rounds say so
        return bool(changes)

    def _round(self, sync: PimSync, names: list[str]) -> None:
        reports, failed = sync.round(only=names)
        at, now = datetime.now(UTC), time.monotonic()
        for report in reports:
            b = self.books[report.book]
            b.rounds += 1
            b.last_round_at = b.last_ok_at = at
            b.last_report, b.last_error, b.failures = report, "", 0
            b.read_due, b.retry_at = now + self.every, 0.0
            for k in (*ITEMS, "conflicts"):
                b.totals[k] += getattr(report, k)
            for note in report.notes:
                log.warning("address book %s: %s", report.book, note)
        for name, exc in failed.items():
            b = self.books[name]
            b.rounds += 1
            b.failed_rounds += 1
            b.last_round_at = at
            b.failures += 1
            b.last_error = f"{type(exc).__name__}: {logs.redact_urls(str(exc))}"
            pause = min(_FIRST_RETRY * 2 ** (b.failures - 1), self.every)
            b.retry_at = now + pause
            log.warning("address book %s: round failed, next try in %.0fs: %s", name, pause, b.last_error)

    def status(self) -> dict[str, dict[str, Any]]:
        """The status documents of the books this gateway holds (`pimsync:NAME`)."""
        return {
            f"pimsync:{b.name}": {**b.to_json(), "task_error": self.last_error}
            for b in self.books.values()
            if self.holds(LEASE_SOURCE, b.name)
        }
