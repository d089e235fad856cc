"""Whether the gateway that wrote the status document still runs.

The status in the ledger is the last one written: after a stop or a kill it still says
`connected`. The service writes a heartbeat every 2 s while it runs (`service.at`), and
`running: false` when it stops; a killed one leaves `running: true` behind, so the pid (on
the same host) and the heartbeat's age decide.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The heartbeat comes every 2 s; a busy machine may delay it, a dead process never writes it.
STALE_AFTER = 30.0


@dataclass(frozen=True)
class Liveness:
    running: bool
    why: str  # in words, for `status` and the page
    pid: int | None
    heartbeat_at: str | None
    heartbeat_age: float | None  # seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "why": self.why,
            "pid": self.pid,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_age_seconds": None if self.heartbeat_age is None else round(self.heartbeat_age, 1),
        }


def age_of(stamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds since an ISO timestamp the gateway wrote (None when there is none)."""
    if not stamp:
        return None
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - at).total_seconds())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def liveness(service: dict[str, Any] | None, now: datetime | None = None) -> Liveness:
    if not service:
        return Liveness(False, "no gateway has run yet", None, None, None)
    pid = service.get("pid")
    at = service.get("at")
    age = age_of(at, now)
    if service.get("running") is False:
        return Liveness(False, "stopped", pid, at, age)
    same_host = service.get("host") in (None, socket.gethostname())
    if same_host and isinstance(pid, int) and not pid_alive(pid):
        return Liveness(False, f"process {pid} is gone (killed or crashed)", pid, at, age)
    if age is None or age > STALE_AFTER:
        return Liveness(False, "no heartbeat for " + (f"{age:.0f} s" if age is not None else "ever"), pid, at, age)
    return Liveness(True, "running", pid, at, age)


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"
