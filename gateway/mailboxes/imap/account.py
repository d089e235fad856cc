"""What a folder's scan and the write-back use of their IMAP source, as a protocol.

`ImapSource` (source.py) is the one implementation; folder.py and writeback.py depend on this
shape instead of importing the source, so the source imports them and nothing imports back.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from gateway.mailboxes.base import SourceEnv, SourceRef
from gateway.mailboxes.imap.config import ImapConfig


class ImapAccount(Protocol):
    name: str
    account: str
    config: ImapConfig
    env: SourceEnv
    max_size: int  # bytes: a bigger message is fetched as headers only
    idle_renew: float  # seconds an IDLE lasts before it is renewed
    moved_lock: threading.Lock
    moved_in: dict[tuple[str, int], set[int]]  # our own moves: (folder, UIDVALIDITY) → UIDs

    def ref(self, folder: str, uidvalidity: int, uid: int) -> SourceRef: ...

    def server_name(self, folder: str) -> str | None: ...

    def note_no_keywords(self, folder: str, perm: Any) -> None: ...

    def progress_start(self, folder: str, total: int) -> Any: ...

    def progress_advance(self, task: Any, n: int) -> None: ...

    def progress_done(self, task: Any) -> None: ...
