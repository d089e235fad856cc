"""Where a copy of a mail lies: which mailbox, which folder, which item.

Ledger-level data: the ledger records every copy it was told about by this reference, and a
write-back finds the copy again by it. The mailbox packages build them; they hold no
behaviour of any protocol.
"""

from __future__ import annotations

from dataclasses import dataclass


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
