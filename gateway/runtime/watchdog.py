"""The budget per message, on the main process's side: the watchdog loop, what it does with a
worker over budget, and what a crash of a worker means for the copies it held
(gateway/pipeline/budget.py has the why)."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from gateway.ledger import Ledger
from gateway.ledger import work as ledger_work
from gateway.pipeline import Pipeline
from gateway.pipeline.budget import CRASH_LIMIT, InHand, Watch, crashed, over_budget
from gateway.runtime.intake import Intake

log = logging.getLogger("gateway.service")


class Workers(Protocol):
    """Worker threads or worker processes, as the watchdog and the runtime see them."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reload(self) -> None: ...

    def give_up(self, key: object) -> list[int]:
        """Replace the worker under `key`; what else it held (not its batch in hand)."""
        ...


class Watchdog:
    def __init__(self, budget: float, watch: Watch, intake: Intake, ledger: Ledger, pipeline: Pipeline) -> None:
        self.budget = budget
        self.watch = watch
        self.intake = intake
        self.ledger = ledger
        self.pipeline = pipeline
        self.workers: Workers | None = None
        self._stop = threading.Event()

    def start(self, workers: Workers) -> None:
        self.workers = workers
        self._stop.clear()
        threading.Thread(target=self._loop, name="budget", daemon=True).start()

    def stop(self) -> None:
        """Called once the workers have ended: until then a stuck one may hold a stop up."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(min(1.0, self.budget / 4)):
            for key, held in self.watch.overdue(self.budget):
                try:
                    self._over_budget(key, held)
                except Exception:
                    log.exception("worker %s over budget: could not give up on it", key)

    def _over_budget(self, key: object, held: InHand) -> None:
        """Quarantine the message a stage of its own went over budget on; a stage of a whole
        batch names none, so each of that batch is handled alone next. Then give up on the
        worker and hand the rest of its batch back."""
        # The worker first: whatever happens next, the gateway keeps its number of workers.
        batch = list(held.batch)
        if self.workers is not None:  # a process also holds the batch queued after this one
            batch += [pk for pk in self.workers.give_up(key) if pk not in held.batch]
        reason = over_budget(held.stage, self.budget)
        culprit = held.pks[0] if len(held.pks) == 1 else None
        if culprit is not None:
            state = self.pipeline.quarantine_location(culprit, reason)
            log.error("location %s: %s; %s, worker %s given up on", culprit, reason, state, key)
        else:
            self.intake.handle_alone(held.pks or held.batch)
            log.error("worker %s: a batch %s; its copies %s are handled one at a time", key, reason, list(held.batch))
        ledger_work.finished(self.ledger, held.batch)  # given up on, not crashed
        if culprit is not None:
            self.intake.done(culprit, state)
        for pk in batch:
            if pk != culprit:
                self.lost(pk)

    def lost(self, pk: int) -> None:
        """A worker died with this location in hand (or was given up on): queue it again (the
        journal makes it safe). A worker process that died while handling it counts as a crash."""
        try:
            if pk in self.after_crash(ledger_work.crashed(self.ledger, [pk])):
                self.intake.done(pk, "quarantined")
                return
        except Exception:
            log.exception("location %s: crash not counted", pk)
        self.intake.requeue(pk)

    def after_crash(self, crashes: dict[int, int]) -> set[int]:
        """Copies a process died while handling: past the limit quarantined (returned), else
        handled alone from now on, so the next crash is counted against the right one."""
        given_up: set[int] = set()
        for pk, n in crashes.items():
            if n >= CRASH_LIMIT:
                state = self.pipeline.quarantine_location(pk, crashed(n))
                ledger_work.finished(self.ledger, [pk])
                log.error("location %s: %s; %s", pk, crashed(n), state)
                given_up.add(pk)
            else:
                self.intake.handle_alone([pk])
        return given_up
