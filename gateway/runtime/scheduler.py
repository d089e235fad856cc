"""Work the ledger holds but no queue does: what a stop or a crash left open, retries that
fell due, copies an intake recorded while the queue was full, copies that failed outside
the pipeline. The scheduler hands them to the intake again; the intake's in-flight
bookkeeping makes offering a copy twice harmless.
"""

from __future__ import annotations

import logging
import threading
import time

from gateway.ledger import Ledger
from gateway.ledger import work as ledger_work
from gateway.runtime.intake import Intake
from gateway.runtime.watchdog import Watchdog

log = logging.getLogger("gateway.service")


class Scheduler:
    def __init__(self, ledger: Ledger, intake: Intake, watchdog: Watchdog, *, copy_delay: float) -> None:
        self.ledger = ledger
        self.intake = intake
        self.watchdog = watchdog
        self.copy_delay = copy_delay  # how long a copy that failed outside the pipeline waits
        self._copies_later = False

    def copies_later(self) -> None:
        """A copy failed outside the pipeline: sweep the open copies again after a pause."""
        self._copies_later = True

    def recover(self) -> int:
        """Queue every copy whose work a stop or a crash left unfinished, and due retries."""
        self.ledger.reset_interrupted()
        self.watchdog.after_crash(ledger_work.crashed(self.ledger))
        pks = self.ledger.open_locations()
        for pk in pks:
            self.intake.enqueue(pk)
        return len(pks) + self.queue_due_retries()

    def queue_due_retries(self) -> int:
        n = 0
        for message_pk in self.ledger.due_retries():
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
            for pk in self.ledger.open_locations():
                self.intake.enqueue(pk)
            self.intake.wait_idle()

    def run(self, stop: threading.Event) -> None:
        """`run`: every second, due retries; the backlog once the queue has room again."""
        last_copy_sweep = time.monotonic()
        queue = self.intake.queue
        while not stop.wait(1.0):
            try:
                self.queue_due_retries()
                copies_due = self._copies_later and time.monotonic() - last_copy_sweep >= self.copy_delay
                if (self.intake.backlog and queue.qsize() < queue.maxsize // 2) or copies_due:
                    self.intake.backlog = False
                    if copies_due:
                        self._copies_later, last_copy_sweep = False, time.monotonic()
                    for pk in self.ledger.open_locations():
                        self.intake.enqueue(pk, block=False)
            except Exception:
                log.exception("retry scheduler")
