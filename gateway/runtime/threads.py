"""Worker threads: the worker loop (gateway/runtime/loop.py) on the intake's queue.

The pipeline is shared; each thread reports its stages under its own name, so the budget's
watchdog (gateway/runtime/watchdog.py) knows which thread holds what. A thread the watchdog
gave up on is left to end on its own (Python cannot stop it inside C code) and replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from gateway.pipeline.budget import Stage, Watch
from gateway.runtime.intake import Intake
from gateway.runtime.loop import Control, take_batch, work


class _ThreadReports:
    def __init__(self, intake: Intake, watch: Watch) -> None:
        self.intake = intake
        self.watch = watch
        self.me = threading.current_thread().name

    def took(self, held: Sequence[int]) -> None:
        self.watch.batch(self.me, held)

    def handled(self, states: dict[int, str]) -> None:
        for pk, state in states.items():
            self.intake.count(pk, state)

    def finished(self, held: Sequence[int]) -> None:
        self.watch.done(self.me)
        if not self.watch.is_abandoned(self.me):  # given back by the watchdog, which released them
            self.intake.release(held)

    def should_end(self) -> bool:
        return self.watch.is_abandoned(self.me)

    def reload(self) -> None:
        """The threads share the gateway's rules: nothing to load here."""


class ThreadWorkers:
    def __init__(
        self, intake: Intake, handle_many: Callable[[list[int]], dict[int, str]], watch: Watch, *, count: int, batch: int
    ) -> None:
        self.intake = intake
        self.handle_many = handle_many
        self.watch = watch
        self.count = count
        self.batch = batch
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # the list of threads: the watchdog edits it while a stop reads it
        self._stopping = False

    def on_stage(self, pks: Sequence[int], stage: Stage) -> None:
        """The pipeline's stage reports: the watchdog keeps the time per thread."""
        self.watch.enter(threading.current_thread().name, pks, stage)

    def _run(self) -> None:
        work(lambda: take_batch(self.intake.queue, self.batch), self.handle_many, _ThreadReports(self.intake, self.watch))

    def _thread(self, name: str) -> threading.Thread:
        return threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._stopping = False
        self._threads = [self._thread(f"worker-{i}") for i in range(self.count)]
        for t in self._threads:
            t.start()

    def give_up(self, key: object) -> list[int]:
        """The watchdog gave up on this thread: a new one takes its place (not during a stop,
        which waits only for the threads it knows). The old one holds nothing more to hand back."""
        with self._lock:
            old = next((t for t in self._threads if t.name == key), None)
            if old is not None:
                self._threads.remove(old)
            if not self._stopping:
                new = self._thread(f"{key}+")
                self._threads.append(new)
                new.start()
        return []

    def reload(self) -> None:
        """The threads share the gateway's rules, which reloaded themselves."""

    def stop(self) -> None:
        """Each thread finishes the batch in hand; what is still queued is dropped from the queue
        and stays open in the ledger for the next start (draining it could take minutes)."""
        with self._lock:
            self._stopping = True
            n = len(self._threads)
        self.intake.drop_queued()
        for _ in range(n):
            self.intake.queue.put(Control.STOP)
        # The watchdog runs on until the threads end: one stuck past its budget is given up on
        # (its message quarantined) instead of holding the stop up for ever.
        while True:
            with self._lock:
                live = [t for t in self._threads if t.is_alive() and not self.watch.is_abandoned(t.name)]
            if not live:
                return
            live[0].join(timeout=1.0)
