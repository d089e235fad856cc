"""The status document the running gateway writes, and the summary `run --once` prints.

The document is also the service's heartbeat (`service.at`): `status` tells a running
gateway from a stopped or killed one by `running`, the pid and the heartbeat's age
(gateway/admin/liveness.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.config.rulesholder import RulesHolder
from gateway.ledger import Ledger

log = logging.getLogger("gateway.service")


def write(
    ledger: Ledger,
    sources: Sequence[Any],
    rules: RulesHolder,
    *,
    workers: int,
    queued: int,
    running: bool = True,
    processes: int = 1,
    extra: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Every source's status, the rules', the address books' (`extra`) and the service's
    heartbeat: one transaction."""
    try:
        docs = {f"source:{s.name}": s.status() for s in sources}
        docs.update(extra or {})
        docs["rules"] = rules.status()
        docs["service"] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "running": running,
            "workers": workers,  # threads, when processes is 1
            "processes": processes,  # worker processes, 1: the workers are threads
            "queue": queued,
            "threads": threading.active_count(),  # flat however many mailboxes are watched
            "at": datetime.now(UTC).isoformat(),
        }
        ledger.set_statuses(docs)
    except Exception as exc:
        log.warning("status not written: %s", exc)


def summary(ledger: Ledger) -> dict[str, int]:
    """Every state's count over all sources and folders."""
    out: dict[str, int] = {}
    for states in ledger.counts().values():
        for state, n in states.items():
            out[state] = out.get(state, 0) + n
    return out
