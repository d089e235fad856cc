"""The status document the running gateway writes, and the summary `run --once` prints.

The document is also the service's heartbeat (`service.at`): `status` tells a running
gateway from a stopped or killed one by `running`, the pid and the heartbeat's age
(gateway/admin/liveness.py).
"""

from __future__ import annotations

import logging
import os
import socket
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
) -> None:
    try:
        for s in sources:
            ledger.set_status(f"source:{s.name}", s.status())
        ledger.set_status("rules", rules.status())
        ledger.set_status(
            "service",
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "running": running,
                "workers": workers,  # threads, when processes is 1
                "processes": processes,  # worker processes, 1: the workers are threads
                "queue": queued,
                "at": datetime.now(UTC).isoformat(),
            },
        )
    except Exception as exc:
        log.warning("status not written: %s", exc)


def summary(ledger: Ledger) -> dict[str, int]:
    """Every state's count over all sources and folders."""
    out: dict[str, int] = {}
    for states in ledger.counts().values():
        for state, n in states.items():
            out[state] = out.get(state, 0) + n
    return out
