"""One worker process: its parts, the worker loop, and the reports it sends back.

The process builds what handles mail (gateway/runtime/parts.py) and no source; it runs the
worker loop of the threads (gateway/runtime/loop.py) on its own queue, and sends to the main
process each copy's state and, for the budget's watchdog there, what it holds and at which
stage. The main process keeps all the time and all the bookkeeping.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.pipeline.budget import Stage
from gateway.runtime.loop import take_batch, work

WorkerKey = tuple[int, int]  # (slot, pid): a worker started again in a slot reports under a new key


@dataclass(frozen=True)
class StageReport:
    key: WorkerKey
    pks: tuple[int, ...]
    stage: Stage


@dataclass(frozen=True)
class Held:
    """What the worker holds now; nothing once its batch is done."""

    key: WorkerKey
    pks: tuple[int, ...]


@dataclass(frozen=True)
class Result:
    index: int
    pk: int
    state: str


class _ProcessReports:
    """A worker process's reports, sent to the main process's collector."""

    def __init__(self, index: int, results: Any, halt: Any, reload: Callable[[], object]) -> None:
        self.index = index
        self.me: WorkerKey = (index, os.getpid())
        self.results = results
        self.halt = halt
        self._reload = reload  # the worker's own rules

    def on_stage(self, pks: Sequence[int], stage: Stage) -> None:
        # The main process's watchdog keeps the time (gateway/pipeline/budget.py): it hears of each stage.
        self.results.send(StageReport(self.me, tuple(pks), stage))

    def took(self, held: Sequence[int]) -> None:
        self.results.send(Held(self.me, tuple(held)))

    def handled(self, states: dict[int, str]) -> None:
        for pk, state in states.items():
            self.results.send(Result(self.index, pk, state))

    def finished(self, held: Sequence[int]) -> None:
        self.results.send(Held(self.me, ()))

    def should_end(self) -> bool:
        return bool(self.halt.is_set())

    def reload(self) -> None:
        self._reload()


def worker_main(
    config_path: str, index: int, inbox: Any, results: Any, log_level: str, environ: dict[str, str], lifeline: Any, halt: Any
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    # The fork server was started with the environment of the pool's first start; a worker
    # sees the parent's environment of now, as a spawned one would (`${VAR}` in the config).
    os.environ.clear()
    os.environ.update(environ)
    from gateway import logs
    from gateway.config import load_config
    from gateway.runtime.handler import BatchHandler
    from gateway.runtime.parts import for_worker_process

    logs.setup(log_level)

    def main_alive() -> bool:
        # Only the main process holds the other end and never writes: readable means EOF, the
        # main process is gone (SIGKILL, OOM). Nor does the fork server end first: every
        # worker it forks inherits its liveness pipe, so it lives as long as they do.
        return not lifeline.poll()

    parts = for_worker_process(load_config(config_path))
    reports = _ProcessReports(index, results, halt, parts.rules.reload)
    parts.pipeline.on_stage = reports.on_stage
    handler = BatchHandler(parts.config, parts.ledger, parts.pipeline)
    try:
        work(lambda: take_batch(inbox, parts.config.batch, main_alive), handler.handle_many, reports)
    finally:
        parts.close()
