"""The worker loop: one function for worker threads and worker processes.

A worker takes a batch from its queue, handles the copies that must go alone one by one,
reports what it holds to the budget's watchdog (gateway/pipeline/budget.py) and every outcome to
whoever counts them. Threads and processes differ only in where those reports go (the
`Reporter`) and where the batch comes from (`take`); the loop is this one.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from gateway.pipeline.budget import Abandoned


@dataclass(frozen=True)
class Alone:
    """A copy to handle in a batch of its own: a batch of it went over budget or crashed."""

    pk: int


class Control(Enum):
    """What a queue carries besides copies; it ends the batch it comes in."""

    STOP = "stop"  # finish the batch in hand, then end
    RELOAD = "reload"  # load the rules again (worker processes hold their own)


Copy = int | Alone  # a copy to handle
Item = Copy | Control


class Reporter(Protocol):
    """Where a worker's reports go: the main process's bookkeeping, in the same process or not."""

    def took(self, held: Sequence[int]) -> None: ...

    def handled(self, states: dict[int, str]) -> None: ...

    def finished(self, held: Sequence[int]) -> None: ...

    def should_end(self) -> bool: ...

    def reload(self) -> None: ...


class Source(Protocol):
    """A queue to take from: a queue.Queue (threads) or a multiprocessing queue (a process)."""

    def get(self, block: bool = True, timeout: float | None = None) -> Item: ...

    def get_nowait(self) -> Item: ...


def split_batch(items: Sequence[Item]) -> tuple[list[int], list[int]]:
    """A batch's copies to handle together, and those to handle one at a time."""
    work = [i for i in items if isinstance(i, int)]
    alone = [i.pk for i in items if isinstance(i, Alone)]
    return work, alone


def take_batch(q: Source, limit: int, alive: Callable[[], bool] | None = None) -> list[Item]:
    """The next item of a queue (waiting for it), then what else is queued, up to `limit`
    items: a batch whose writes share transactions. Anything but a plain copy ends the batch,
    so a stop or a reload is never taken past. `alive`: asked every 2 s while waiting; when it
    says no, the batch is a stop."""
    while True:
        try:
            items: list[Item] = [q.get(timeout=2.0) if alive is not None else q.get()]
            break
        except queue.Empty:
            if alive is not None and not alive():
                return [Control.STOP]
    while len(items) < limit and isinstance(items[-1], int):
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            break
    return items


def work(take: Callable[[], list[Item]], handle_many: Callable[[list[int]], dict[int, str]], report: Reporter) -> None:
    """Handle batches until a stop, or until the watchdog gives up on this worker."""
    while True:
        items = take()
        together, alone = split_batch(items)
        held = together + alone
        if held:
            report.took(held)
        try:
            for group in ([together] if together else []) + [[pk] for pk in alone]:
                report.handled(handle_many(group))
        except Abandoned:  # the watchdog gave this batch back and started another worker
            return
        finally:
            if held:
                report.finished(held)
        if items[-1] is Control.STOP or report.should_end():  # the batch in hand is done, the rest waits
            return
        if items[-1] is Control.RELOAD:
            report.reload()
