"""What the pipeline tells the world while it works, and the tests' fault injection.

`on_stage` tells the budget's watchdog (gateway.pipeline.budget) which copies are at which stage; it
may raise `budget.Abandoned` to stop a worker given up on. `crash_at` is called at each
journal step: the crash tests make the process die there like `kill -9`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

from gateway.pipeline.budget import Stage


class Hooks:
    def __init__(self) -> None:
        self.on_stage: Callable[[Sequence[int], Stage], None] | None = None
        self.crash_at: Callable[[str], None] | None = crash_hook()
        self.slow_parse: Callable[[bytes], None] | None = slow_parse_hook()

    def stage(self, pks: Sequence[int], stage: Stage) -> None:
        if self.on_stage is not None:
            self.on_stage(pks, stage)

    def step(self, name: str) -> None:
        if self.crash_at is not None:
            self.crash_at(name)


def slow_parse_hook() -> Callable[[bytes], None] | None:
    """Test hook for the message budget: `CRM_GATEWAY_TEST_SLOW_PARSE=MARKER:SECONDS` makes
    parsing a mail whose raw bytes contain MARKER take SECONDS longer, as a parser stuck on a
    hostile mail would; `MARKER:crash` makes the process die there like `kill -9`, as a parser
    crashing the interpreter would. Read from the environment only; only the tests set it."""
    wanted = os.environ.get("CRM_GATEWAY_TEST_SLOW_PARSE")
    if not wanted:
        return None
    marker, _, seconds = wanted.rpartition(":")
    needle = marker.encode()

    def slow(raw: bytes) -> None:
        if needle in raw:
            if seconds == "crash":
                logging.shutdown()
                os._exit(137)
            logging.getLogger("gateway.pipeline").warning("test hook: parsing this mail takes %s s", seconds)
            time.sleep(float(seconds))

    return slow


def crash_hook() -> Callable[[str], None] | None:
    """Fault injection for the crash tests: `CRM_GATEWAY_CRASH_AT=attach:called` makes the
    process die like `kill -9` when it reaches that journal step (a prefix matches too)."""
    wanted = os.environ.get("CRM_GATEWAY_CRASH_AT")
    if not wanted:
        return None
    once = os.environ.get("CRM_GATEWAY_CRASH_ONCE")  # a marker file: crash only the first time

    def crash(step: str) -> None:
        if step.startswith(wanted) or step.endswith(wanted):
            if once:
                try:
                    os.close(os.open(once, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    return
            logging.shutdown()
            os._exit(137)

    return crash
