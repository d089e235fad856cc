"""Work the ledger holds but no queue does: what a stop or a crash left open, retries that
fell due, copies an intake recorded while the queue was full, copies that failed outside
the pipeline. The scheduler hands them to the intake again; the intake's in-flight
bookkeeping makes offering a copy twice harmless.

With gateways sharing a ledger, each takes only the work of the mailboxes it holds (`owns`):
a copy's own mailbox, a message's primary copy's for a retry. A copy waiting for tags whose
message another gateway finished is handed over through the ledger: the holder of its
mailbox finds it in its sweep (`handed_over`) and writes its tags.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection

from gateway.ledger import Ledger
from gateway.ledger import work as ledger_work
from gateway.ledger.leases import Mailbox
from gateway.ledger.reads import Owns
from gateway.runtime.intake import Intake
from gateway.runtime.watchdog import Watchdog

log = logging.getLogger("gateway.service")
_HAND_OVER_EVERY = 2.0  # seconds between sweeps for copies another gateway's outcome left to us


class Scheduler:
    def __init__(
        self, ledger: Ledger, intake: Intake, watchdog: Watchdog, *, copy_delay: float, owns: Owns | None = None
    ) -> None:
        self.ledger = ledger
        self.owns = owns  # None: every copy is this gateway's
        self.intake = intake
        self.watchdog = watchdog
        self.copy_delay = copy_delay  # how long a copy that failed outside the pipeline waits
        self._copies_later = False

    def copies_later(self) -> None:
        """A copy failed outside the pipeline: sweep the open copies again after a pause."""
        self._copies_later = True

    def recover(self) -> int:
        """Queue every copy whose work a stop or a crash left unfinished, and due retries."""
        self.ledger.reset_interrupted(self.owns)
        pks = self.ledger.open_locations(self.owns)
        # Another gateway on this machine may have copies in hand now: count crashes only
        # for the copies in mailboxes this gateway holds.
        self.watchdog.after_crash(ledger_work.crashed(self.ledger, pks if self.owns is not None else None))
        for pk in pks:
            self.intake.enqueue(pk)
        return len(pks) + self.queue_due_retries()

    def recover_mailboxes(self, mailboxes: Collection[Mailbox]) -> None:
        """Mailboxes this gateway has just taken (their holder died, or let them go): the open
        work in them is ours now. Queued without waiting (the lease task calls this); what does
        not fit is swept later."""
        wanted = set(mailboxes)

        def among(source: str, account: str) -> bool:
            return Mailbox(source, account) in wanted

        self.ledger.reset_interrupted(among)
        for pk in self.ledger.open_locations(among):
            self.intake.enqueue(pk, block=False)
        self.queue_due_retries()

    def queue_due_retries(self) -> int:
        n = 0
        for message_pk in self.ledger.due_retries(owns=self.owns):
            primary = self.ledger.message(message_pk).primary_location
            if primary is not None:
                self.intake.enqueue(primary)
                n += 1
        return n

    def drain_backlog(self) -> None:
        """`run --once`: queue what an intake recorded while the queue was full, until done."""
        self.intake.wait_idle()
        while self.intake.backlog:
            self.intake.backlog = False
            for pk in self.ledger.open_locations(self.owns):
                self.intake.enqueue(pk)
            self.intake.wait_idle()

    def run(self, stop: threading.Event) -> None:
        """`run`: every second, due retries; the backlog once the queue has room again."""
        last_copy_sweep = last_hand_over = time.monotonic()
        queue = self.intake.queue
        while not stop.wait(1.0):
            try:
                self.queue_due_retries()
                if self.owns is not None and time.monotonic() - last_hand_over >= _HAND_OVER_EVERY:
                    last_hand_over = time.monotonic()
                    for pk in self.ledger.handed_over(self.owns):
                        self.intake.enqueue(pk, block=False)
                copies_due = self._copies_later and time.monotonic() - last_copy_sweep >= self.copy_delay
                if (self.intake.backlog and queue.qsize() < queue.maxsize // 2) or copies_due:
                    self.intake.backlog = False
                    if copies_due:
                        self._copies_later, last_copy_sweep = False, time.monotonic()
                    for pk in self.ledger.open_locations(self.owns):
                        self.intake.enqueue(pk, block=False)
            except Exception:
                log.exception("retry scheduler")
