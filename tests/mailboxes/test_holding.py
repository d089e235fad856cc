"""A one-mailbox source watches only while the gateway holds its mailbox: it does not start
before, stops when the answer turns to no, and starts again when it turns back."""

from __future__ import annotations

import threading

from gateway.mailboxes.holding import while_held
from tests.waiting import wait_for


class Answers:
    """The intake's `holds`, switched by the test."""

    def __init__(self) -> None:
        self.held = False

    def holds(self, source: str, account: str) -> bool:
        return self.held and (source, account) == ("mail", "ann@example.com")


def test_the_watch_runs_only_while_the_mailbox_is_held():
    answers = Answers()
    runs: list[str] = []

    def watch(held: threading.Event) -> None:
        runs.append("start")
        held.wait()
        runs.append("stop")

    stop = threading.Event()
    t = threading.Thread(target=while_held, args=(answers, "mail", "ann@example.com", stop, watch), daemon=True)
    t.start()
    assert not wait_for(lambda: runs, timeout=1.5)  # not held: never started
    answers.held = True
    assert wait_for(lambda: runs == ["start"], timeout=30)
    answers.held = False  # lost (or let go): the watch is told to stop
    assert wait_for(lambda: runs == ["start", "stop"], timeout=30)
    answers.held = True
    assert wait_for(lambda: runs == ["start", "stop", "start"], timeout=30)
    stop.set()
    t.join(30)
    assert runs == ["start", "stop", "start", "stop"] and not t.is_alive()
