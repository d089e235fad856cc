"""The budget per message, on the main process's side: the watchdog loop, what it does with a
worker over budget, and the crash counts at a start (gateway/budget.py has the why).
A mixin of `gateway.service.Gateway`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.budget import CRASH_LIMIT, InHand, Stage, crashed, over_budget
from gateway.ledger import work as ledger_work

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger("gateway.service")


class BudgetKeeper:
    def _on_stage(self: Gateway, pks: Sequence[int], stage: Stage) -> None:
        self.watch.enter(threading.current_thread().name, pks, stage)

    def _start_budget(self: Gateway) -> None:
        self._budget_stop.clear()
        threading.Thread(target=self._budget_loop, name="budget", daemon=True).start()

    def _budget_loop(self: Gateway) -> None:
        budget = self.config.message_budget
        while not self._budget_stop.wait(min(1.0, budget / 4)):
            for key, held in self.watch.overdue(budget):
                try:
                    self._over_budget(key, held, budget)
                except Exception:
                    log.exception("worker %s over budget: could not give up on it", key)

    def _over_budget(self: Gateway, key: object, held: InHand, budget: float) -> None:
        """Quarantine the message a stage of its own went over budget on; a stage of a whole
        batch names none, so each of that batch is handled alone next. Then give up on the
        worker and hand the rest of its batch back."""
        # The worker first: whatever happens next, the gateway keeps its number of workers.
        batch = list(held.batch)
        if self.pool is not None:  # a process also holds the batch queued after this one
            batch += [pk for pk in self.pool.abandon(key[0]) if pk not in held.batch]  # type: ignore[index]
        else:
            with self._inflight_lock:
                old = next((t for t in self._threads if t.name == key), None)
                if old is not None:
                    self._threads.remove(old)
                if not self._stopping.is_set():  # a stop waits for the workers it knows, no new one
                    new = threading.Thread(target=self._worker, name=f"{key}+", daemon=True)
                    self._threads.append(new)
                    new.start()
        reason = over_budget(held.stage, budget)
        culprit = held.pks[0] if len(held.pks) == 1 else None
        if culprit is not None:
            state = self.pipeline.quarantine_location(culprit, reason)
            log.error("location %s: %s; %s, worker %s given up on", culprit, reason, state, key)
        else:
            self._alone.update(held.pks or held.batch)
            log.error("worker %s: a batch %s; its copies %s are handled one at a time", key, reason, list(held.batch))
        ledger_work.finished(self.ledger, held.batch)  # given up on, not crashed
        if culprit is not None:
            self._done(culprit, state)
        for pk in batch:
            if pk != culprit:
                self._lost(pk)

    def _after_crash(self: Gateway, crashes: dict[int, int]) -> set[int]:
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
                self._alone.add(pk)
        return given_up
