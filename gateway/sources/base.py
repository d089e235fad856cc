"""The Source seam: where a copy of a mail was found, and how an intake hands it over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any, Protocol


@dataclass(frozen=True)
class SourceRef:
    """A copy's location: (source, account, folder, UIDVALIDITY, UID) for IMAP, (source,
    account, folder, immutable item id) for Exchange/Graph, (source, account, folder, path
    key) for Maildir, (source, user, folder, spool name) for SMTP."""

    source: str
    account: str
    folder: str
    item_key: str
    uidvalidity: int = 0

    def label(self) -> str:
        uv = f";UIDVALIDITY={self.uidvalidity}" if self.uidvalidity else ""
        return f"{self.source}:{self.account}/{self.folder}{uv}/{self.item_key}"


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
