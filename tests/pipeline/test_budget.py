"""The budget's bookkeeping: the watch of stages in hand, and the crash marks in a real ledger."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.ledger import Ledger
from gateway.ledger import work as ledger_work
from gateway.pipeline.budget import Abandoned, Stage, Watch, crashed, over_budget


def test_a_stage_over_budget_is_reported_once_and_its_worker_is_stopped_at_its_next_report() -> None:
    w = Watch()
    w.batch("worker-0", [1, 2, 3])
    w.enter("worker-0", [2], Stage.PARSE)
    w.batch("worker-1", [4])
    w.enter("worker-1", [4], Stage.RULES)
    assert w.overdue(60) == []
    time.sleep(0.05)
    w.enter("worker-1", [4], Stage.CRM)  # a new stage starts the clock again
    late = w.overdue(0.03)
    assert [(k, h.batch, h.pks, h.stage) for k, h in late] == [("worker-0", (1, 2, 3), (2,), Stage.PARSE)]
    assert w.overdue(0.03) == []  # given up on once
    assert w.is_abandoned("worker-0") and not w.is_abandoned("worker-1")
    with pytest.raises(Abandoned):
        w.enter("worker-0", [3], Stage.PARSE)
    assert over_budget(Stage.PARSE, 30) == "took more than 30 s to parse"
    assert over_budget("do the CRM work", 2.5) == "took more than 2.5 s to do the CRM work"
    assert crashed(3).startswith("processing crashed 3 times")


def test_marks_left_by_a_crash_count_once_per_crash_and_vanish_when_done(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger_work.started(led, [10, 11, 12])
        ledger_work.finished(led, [12])
        assert ledger_work.crashed(led) == {10: 1, 11: 1}  # the process died with 10 and 11 in hand
        assert ledger_work.crashed(led) == {10: 1, 11: 1}  # not in hand since: no new crash
        ledger_work.started(led, [10])  # handled alone, and the process dies again
        assert ledger_work.crashed(led, [10]) == {10: 2}
        ledger_work.started(led, [11])
        ledger_work.finished(led, [11])
        assert ledger_work.crashed(led) == {10: 2}
        assert not any(k.startswith("work:") for k in led.all_status())  # not shown by `status`
    finally:
        led.close()
