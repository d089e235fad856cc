"""`crm-gateway pimsync --watch`: rounds until stopped. A CRM change starts a round within
`poll` seconds of its commit (the feed is one cheap query); the address books, which offer no
push the client could use here, are read every `every` seconds, or with the next CRM change.

A book whose round fails is reported and backed off: tried again after `poll`, then twice as
long each time, up to `every` (at least a minute). Only the books that synced count when
asking whether the CRM moved: a failing book's cursor does not move, and counted it would
make every check say "moved" (a round after round with no pause). Between rounds the loop
always waits at least `poll`. It ends on `stop` (SIGINT/SIGTERM set it) after the round in hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gateway.errors import GatewayError
from gateway.pimsync.rounds import PimSync, Results

Report = Callable[[Results], None]


def watch(sync: PimSync, stop: threading.Event, report: Report, *, every: float = 300.0, poll: float = 2.0) -> None:
    names = [b.name for b in sync.books]
    failures: dict[str, int] = {}
    retry_at: dict[str, float] = {}
    cap = max(every, 60.0)
    while not stop.is_set():
        now = time.monotonic()
        due_books = [n for n in names if retry_at.get(n, 0.0) <= now]
        results = sync.round(only=due_books)
        report(results)
        for name in due_books:
            if name in results[1]:
                failures[name] = failures.get(name, 0) + 1
                retry_at[name] = time.monotonic() + min(cap, poll * 2 ** (failures[name] - 1))
            else:
                failures.pop(name, None)
                retry_at.pop(name, None)
        due = time.monotonic() + every
        healthy = [n for n in names if n not in failures]
        while not stop.wait(poll) and time.monotonic() < due:
            if any(at <= time.monotonic() for at in retry_at.values()):
                break  # a failing book's retry is due
            try:
                if healthy and sync.crm_moved(healthy):
                    break
            except GatewayError:
                pass  # the CRM away for now: the round at `due` says so
