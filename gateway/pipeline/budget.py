"""A time budget per message (config `message_budget`, seconds).

Python cannot interrupt a thread inside C code (a parser, a regex engine, a driver's socket
read), so nothing here tries to. The pipeline reports which message(s) it is working on and at
which stage (`Pipeline.on_stage`); a watchdog in the main process looks at those reports, and
when a stage has run longer than the budget it quarantines the message with the stage in the
reason, in the ledger (so a restart does not pick it up, even if the process is then killed),
gives up on the worker (a thread is abandoned and replaced, a worker process is killed and
started again) and hands the rest of that worker's batch back to the queue.

A stage that works on a whole batch at once (the shared claim, CRM and ledger transactions)
cannot say which message is at fault: then none is quarantined, and every message of that
batch is handled alone afterwards, where the budget names the one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

CRASH_LIMIT = 3  # a message whose handling killed the process this many times is quarantined


class Stage(str, Enum):
    """What the pipeline is doing; the value completes "took more than N s to …"."""

    PARSE = "parse"
    CLAIM = "claim in the ledger"
    RULES = "run the rules"
    CRM = "do the CRM work"
    WRITEBACK = "write the tags back"
    RECORD = "record the outcome"


def over_budget(stage: Stage | str, seconds: float) -> str:
    return f"took more than {seconds:g} s to {Stage(stage).value}"


def crashed(times: int) -> str:
    return f"processing crashed {times} times (the process died while handling it)"


class Abandoned(BaseException):
    """Raised in a worker thread the watchdog gave up on, at its next stage report: it stops
    before writing anything more. A BaseException so that no `except Exception` keeps it."""


@dataclass(frozen=True)
class InHand:
    batch: tuple[int, ...]  # every location the worker holds
    pks: tuple[int, ...]  # the ones the current stage works on
    stage: Stage
    since: float  # time.monotonic() when the stage began


class Watch:
    """What each worker (a thread name, or a worker process's index) is working on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work: dict[object, InHand] = {}
        self._abandoned: set[object] = set()
        self._batches: dict[object, tuple[int, ...]] = {}

    def batch(self, key: object, batch: Sequence[int]) -> None:
        """A worker took a batch; its stages are reported next."""
        with self._lock:
            self._work.pop(key, None)
            self._batches[key] = tuple(batch)

    def enter(self, key: object, pks: Sequence[int], stage: Stage | str) -> None:
        with self._lock:
            if key in self._abandoned:
                raise Abandoned(key)
            held = self._batches.get(key, tuple(pks))
            self._work[key] = InHand(held, tuple(pks), Stage(stage), time.monotonic())

    def done(self, key: object) -> None:
        with self._lock:
            self._work.pop(key, None)
            self._batches.pop(key, None)

    def overdue(self, budget: float) -> list[tuple[object, InHand]]:
        """Workers whose current stage began more than `budget` seconds ago; each is
        forgotten here and marked abandoned (its next report raises `Abandoned`)."""
        now = time.monotonic()
        with self._lock:
            late = [(k, w) for k, w in self._work.items() if now - w.since > budget]
            for k, _ in late:
                del self._work[k]
                self._batches.pop(k, None)
                self._abandoned.add(k)
            return late

    def is_abandoned(self, key: object) -> bool:
        with self._lock:
            return key in self._abandoned

    def gone(self, key: object) -> None:
        """The worker died on its own: the crash count takes over; its late reports are ignored."""
        with self._lock:
            self._work.pop(key, None)
            self._batches.pop(key, None)
            self._abandoned.add(key)
