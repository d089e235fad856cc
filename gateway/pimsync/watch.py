"""`crm-gateway pimsync --watch`: rounds until stopped. A CRM change starts a round within
`poll` seconds of its commit (the feed is one cheap query); the address books, which offer no
push the client could use here, are read every `every` seconds, or with the next CRM change.

A round that fails for one book is reported and tried again at the next round; the loop ends
on `stop` (SIGINT/SIGTERM set it) after the round in hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gateway.errors import GatewayError
from gateway.pimsync.rounds import PimSync, Results

Report = Callable[[Results], None]


def watch(sync: PimSync, stop: threading.Event, report: Report, *, every: float = 300.0, poll: float = 2.0) -> None:
    while not stop.is_set():
        report(sync.round())
        due = time.monotonic() + every
        while not stop.is_set() and time.monotonic() < due:
            try:
                if sync.crm_moved():
                    break
            except GatewayError:
                pass  # the CRM away for now: the round at `due` says so
            stop.wait(poll)
