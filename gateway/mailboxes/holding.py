"""Watching a mailbox only while this gateway holds it (IntakePort.holds).

Gateways sharing one ledger divide the mailboxes by lease; a source asks before it starts
watching a mailbox and stops when the answer turns to no (the lease lost, or let go to a
gateway that joined). `while_held` does that for a source that watches one mailbox in its
`run`: the watch gets a stop event of its own, set when the mailbox is no longer held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.mailboxes.base import IntakePort

# How often the answer is asked again: a lease is renewed every third of its time and ends
# for its holder a quarter before it expires, so a second is well inside the margin.
ASK_EVERY = 0.5


def while_held(
    intake: IntakePort, source: str, account: str, stop: threading.Event, watch: Callable[[threading.Event], None]
) -> None:
    """Run `watch(held)` while this gateway holds (source, account), until `stop`; `held` is set
    when the mailbox is no longer held (or at the stop), and the watch runs again once it is."""
    while not stop.is_set():
        if not intake.holds(source, account):
            stop.wait(ASK_EVERY)
            continue
        held = threading.Event()

        def ask(held: threading.Event = held) -> None:
            while not stop.wait(ASK_EVERY) and not held.is_set():
                if not intake.holds(source, account):
                    break
            held.set()

        asker = threading.Thread(target=ask, name=f"holds-{source}", daemon=True)
        asker.start()
        try:
            watch(held)
        finally:
            held.set()
            asker.join()
        if not stop.is_set() and intake.holds(source, account):
            stop.wait(ASK_EVERY)  # the watch ended on its own while held: not at once again
