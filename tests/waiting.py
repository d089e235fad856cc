"""Waiting for a condition with a generous deadline: tests never assert on time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(pred: Callable[[], object], timeout: float = 30.0, step: float = 0.2) -> bool:
    """True once `pred()` is truthy; exceptions while the system comes up count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """True once `pred()` is; then, or at the deadline, what it says last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
