"""The Source seam: where a copy of a mail was found, and how an intake hands it over."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from threading import Event
from typing import Any, Protocol

from gateway.ledger.refs import SourceRef

# submit(ref, spooled file) → returns once the ledger has the location (durable)
Submit = Callable[[SourceRef, Path], None]


class Source(Protocol):
    name: str
    type: str

    def run(self, submit: Submit, stop: Event) -> None:
        """Hand over what is there now, then what arrives, until `stop` is set."""

    def scan_once(self, submit: Submit, progress: Callable[[int, int], None] | None = None) -> int:
        """Hand over what is there now and return; `progress(done, total)` for a bar."""

    def status(self) -> dict[str, Any]: ...
