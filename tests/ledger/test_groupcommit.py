"""Group commit with real threads: every caller gets its own result, failures reach each caller."""

from __future__ import annotations

import threading
import time

import pytest

from gateway.ledger.groupcommit import GroupCommit


def test_concurrent_callers_share_writes_and_each_gets_its_result():
    batches: list[list[int]] = []

    def write_many(values):
        batches.append(list(values))
        time.sleep(0.01)  # a slow fsync: others queue up behind it
        return [v * 10 for v in values]

    gc = GroupCommit(write_many)
    results: dict[int, int] = {}

    def call(v: int) -> None:
        results[v] = gc.submit(v)

    threads = [threading.Thread(target=call, args=(v,)) for v in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {v: v * 10 for v in range(40)}
    assert sorted(v for b in batches for v in b) == list(range(40))  # each written exactly once
    assert len(batches) < 40  # and some together


def test_a_failed_write_reaches_every_caller_of_that_batch():
    gc = GroupCommit(lambda values: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        gc.submit(1)
    ok = GroupCommit(lambda values: list(values))
    assert ok.submit(7) == 7  # a later write is not poisoned
