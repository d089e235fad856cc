"""The long-running tasks the runtime starts beside the workers, and how it keeps them running.

Watching a mailbox is a task like any other here: the runtime starts it, restarts it with a
growing pause when it fails, and at a stop joins all of them under one deadline. A source
only says what one watch is (`Source.run`), never how it is kept alive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.mailboxes.base import Source
from gateway.runtime.intake import Stopping

log = logging.getLogger("gateway.service")
# How long a stop waits for the sources, all of them together: a source stuck in a network
# call is left behind (what it fetched is durable or will be fetched again), so a stop ends
# well inside a service manager's patience (`docker stop` kills after 10 s).
SOURCE_STOP_GRACE = 5.0
_FIRST_PAUSE, _LONGEST_PAUSE = 1.0, 300.0


@dataclass(frozen=True)
class Task:
    name: str  # the thread's name, which the stop's log line names
    body: Callable[[threading.Event], None]  # runs until the event is set; returns when done
    on_failure: Callable[[Exception], None] = lambda _exc: None  # e.g. the source's `last_error`
    label: str = ""  # in the log: "source mail failed; restarting in 4s"


def supervise(task: Task, stop: threading.Event) -> None:
    """Run a task until it returns or `stop` is set; a failure restarts it after a pause that
    doubles each time, up to five minutes."""
    pause = _FIRST_PAUSE
    while not stop.is_set():
        try:
            task.body(stop)
            return
        except Stopping:
            return
        except Exception as exc:
            task.on_failure(exc)
            log.exception("%s failed; restarting in %.0fs", task.label or task.name, pause)
            stop.wait(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)


def start_supervised(tasks: Sequence[Task], stop: threading.Event) -> list[threading.Thread]:
    threads = [threading.Thread(target=supervise, args=(t, stop), name=t.name, daemon=True) for t in tasks]
    for t in threads:
        t.start()
    return threads


def source_task(source: Source) -> Task:
    """Watching one source's folders, as a task; its last failure shows in its status, and
    a source that counts its restarts (`restarts`, `restart_reason`) counts this one."""

    def failed(exc: Exception) -> None:
        source.last_error = f"{type(exc).__name__}: {exc}"  # type: ignore[attr-defined]
        if hasattr(source, "restarts"):
            source.restarts += 1
            source.restart_reason = f"the source's loop failed: {source.last_error}"  # type: ignore[attr-defined]

    return Task(f"source-{source.name}", source.run, failed, f"source {source.name}")


def join_together(threads: Sequence[threading.Thread], grace: float) -> list[threading.Thread]:
    """Join threads that were all told to stop at once, with one deadline for all of them
    (not `grace` each: a few stuck ones would add up). The ones still running are returned."""
    deadline = time.monotonic() + grace
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    left = [t for t in threads if t.is_alive()]
    if left:
        log.warning(
            "stopping without waiting longer for %d source(s): %s",
            len(left),
            ", ".join(t.name.removeprefix("source-") for t in left),
        )
    return left


def watch_rules(folders: Sequence[str], reload: Callable[[], object], stop: threading.Event) -> None:
    """Reload when a rule file changes (SIGHUP reloads through the same `reload`)."""
    import watchfiles

    try:
        for _changes in watchfiles.watch(
            *folders,
            stop_event=stop,
            debounce=200,
            raise_interrupt=False,
            watch_filter=lambda _c, p: p.endswith((".yaml", ".yml")),
        ):
            reload()
    except Exception as exc:
        log.warning("rule files not watched (%s): reload with SIGHUP", exc)


def serve_web(gw: Any, listen: str, stop: threading.Event) -> None:
    from gateway.web.app import serve

    try:
        serve(gw, listen, stop)
    except Exception:
        log.exception("status page on %s could not start", listen)
