"""The one worker loop (gateway/runtime/loop.py) that worker threads and processes share."""

from __future__ import annotations

import queue
from collections.abc import Sequence

from gateway.pipeline.budget import Abandoned
from gateway.runtime.loop import Alone, Control, Item, take_batch, work


class Reports:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.end = False

    def took(self, held: Sequence[int]) -> None:
        self.events.append(("took", list(held)))

    def handled(self, states: dict[int, str]) -> None:
        self.events.append(("handled", dict(states)))

    def finished(self, held: Sequence[int]) -> None:
        self.events.append(("finished", list(held)))

    def should_end(self) -> bool:
        return self.end

    def reload(self) -> None:
        self.events.append(("reload", None))


def _queue(*items: Item) -> queue.Queue[Item]:
    q: queue.Queue[Item] = queue.Queue()
    for item in items:
        q.put(item)
    return q


def test_a_batch_is_taken_up_to_its_limit_and_never_past_a_control_item() -> None:
    q = _queue(1, 2, 3, Control.RELOAD, 4, Alone(5), 6)
    assert take_batch(q, 2) == [1, 2]
    assert take_batch(q, 10) == [3, Control.RELOAD]
    assert take_batch(q, 10) == [4, Alone(5)]
    assert take_batch(q, 10) == [6]


def test_a_batch_is_a_stop_once_the_main_process_is_gone() -> None:
    assert take_batch(_queue(), 4, alive=lambda: False) == [Control.STOP]


def test_copies_that_go_alone_are_handled_one_by_one_after_the_batch_and_a_stop_ends_the_loop() -> None:
    q = _queue(1, 2, Alone(3), Control.RELOAD, Alone(4), Control.STOP, 9)
    groups: list[list[int]] = []

    def handle_many(pks: list[int]) -> dict[int, str]:
        groups.append(pks)
        return {pk: "done" for pk in pks}

    reports = Reports()
    work(lambda: take_batch(q, 8), handle_many, reports)
    assert groups == [[1, 2], [3], [4]]
    assert reports.events == [
        ("took", [1, 2, 3]),
        ("handled", {1: "done", 2: "done"}),
        ("handled", {3: "done"}),
        ("finished", [1, 2, 3]),
        ("reload", None),
        ("took", [4]),
        ("handled", {4: "done"}),
        ("finished", [4]),
    ]
    assert q.get_nowait() == 9  # the stop left the rest queued


def test_a_worker_given_up_on_reports_its_batch_finished_and_ends() -> None:
    q = _queue(1, 2, 3)

    def handle_many(pks: list[int]) -> dict[int, str]:
        raise Abandoned("worker-0")

    reports = Reports()
    work(lambda: take_batch(q, 2), handle_many, reports)
    assert reports.events == [("took", [1, 2]), ("finished", [1, 2])]
    assert q.get_nowait() == 3
