"""One watched IMAP folder: its cursor, the scan by UID, and IDLE.

The cursor (UIDVALIDITY, last UID handed over) lives in the ledger and is the truth; IDLE is
only a hint to scan now. A scan fetches `BODY.PEEK[]` (never `\\Seen`) in batches on an
EXAMINEd (read-only) folder, hands each copy over durably, then advances the cursor. A copy
handed over twice (a crash between hand-over and cursor) is the same ledger location, so it
is a no-op; a new UIDVALIDITY rescans from UID 1 and Message-ID dedupe keeps each mail once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient

if TYPE_CHECKING:
    from gateway.sources.imap import ImapSource

log = logging.getLogger("gateway.imap")
IDLE_RENEW = 9 * 60.0  # RFC 2177: re-issue IDLE well inside the servers' 30-minute logout; the issue asks ≤ 10 min
IDLE_TICK = 1.0  # how often an idling loop looks at the stop flag


class ConnectionLost(ConnectionError):
    """The server closed the connection (seen as EOF while idling)."""


@dataclass
class FolderState:
    """What `status` shows for one folder."""

    name: str  # as configured (Unicode; `\\Sent` for a special use)
    server: str | None = None  # the server's name for it, once found
    mode: str = "poll"  # idle | poll
    connected: bool = False
    uidvalidity: int | None = None
    last_uid: int | None = None
    exists: int | None = None
    fetched: int = 0
    oversize: int = 0
    last_error: str = ""
    last_sync: datetime | None = None

    def doc(self) -> dict[str, Any]:
        return {"server_name": self.server, "mode": self.mode, "connected": self.connected,
                "uidvalidity": self.uidvalidity, "last_uid": self.last_uid, "exists": self.exists,
                "fetched": self.fetched, "oversize": self.oversize, "last_error": self.last_error,
                "last_sync": self.last_sync.isoformat() if self.last_sync else None}


def scan(src: ImapSource, client: IMAPClient, fs: FolderState, *, bar: bool = True) -> int:
    """Hand over every message above the cursor; return how many."""
    assert fs.server is not None
    info = client.select_folder(fs.server, readonly=True)
    uv = int(info[b"UIDVALIDITY"])
    fs.exists = int(info.get(b"EXISTS", 0))
    ledger = src.env.ledger
    cur = ledger.get_cursor(src.name, src.account, fs.name) or {}
    last = int(cur.get("last_uid", 0))
    if cur and int(cur.get("uidvalidity", 0)) != uv:
        log.warning("imap %s: %s: UIDVALIDITY changed %s → %s; rescanning the folder (Message-ID dedupe keeps "
                    "each mail once)", src.name, fs.name, cur.get("uidvalidity"), uv)
        last = 0
    fs.uidvalidity, fs.last_uid = uv, last
    if fs.exists == 0:
        uids: list[int] = []
    else:
        with src.moved_lock:  # a message our own `move` put here is a copy already handled
            skip = src.moved_in.get((fs.name, uv), set())
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last and u not in skip)
    if not uids:
        if not cur or cur.get("uidvalidity") != uv:
            ledger.set_cursor(src.name, src.account, fs.name, {"uidvalidity": uv, "last_uid": last})
        fs.last_sync = datetime.now(UTC)
        return 0
    task = src.progress_start(fs.name, len(uids)) if bar else None
    n = 0
    limit = src.max_size
    try:
        for i in range(0, len(uids), src.config.batch):
            chunk = uids[i:i + src.config.batch]
            sizes = {u: int(d.get(b"RFC822.SIZE", 0)) for u, d in client.fetch(chunk, ["RFC822.SIZE"]).items()}
            small = [u for u in chunk if u in sizes and sizes[u] <= limit]
            big = [u for u in chunk if u in sizes and sizes[u] > limit]
            bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            heads = client.fetch(big, ["BODY.PEEK[HEADER]"]) if big else {}
            batch = []
            for u in chunk:
                ref = src.ref(fs.name, uv, u)
                if u in bodies and b"BODY[]" in bodies[u]:
                    batch.append((ref, bytes(bodies[u][b"BODY[]"]), None))
                elif u in heads:  # too big: headers only, the pipeline quarantines it with the reason
                    batch.append((ref, bytes(heads[u].get(b"BODY[HEADER]", b"")), sizes[u]))
                    fs.oversize += 1
                # else: expunged between SEARCH and FETCH
            del bodies, heads
            # One fsync round and one ledger transaction for the batch, before the cursor moves.
            if src.env.submit_many is not None:
                src.env.submit_many(batch, block=True)
            else:
                for ref, raw, size in batch:
                    src.env.submit_bytes(ref, raw, block=True, declared_size=size)
            n += len(batch)
            fs.fetched += len(batch)
            ledger.set_cursor(src.name, src.account, fs.name, {"uidvalidity": uv, "last_uid": chunk[-1]})
            fs.last_uid = chunk[-1]
            if task is not None:
                src.progress_advance(task, len(chunk))
    finally:
        if task is not None:
            src.progress_done(task)
    fs.last_sync = datetime.now(UTC)
    return n


def idle_until_news(src: ImapSource, client: IMAPClient, stop: Any) -> bool:
    """IDLE until new mail is announced, the renewal time, or stop. True: scan now."""
    client.idle()
    started = time.monotonic()
    news = False
    while not stop.is_set() and not news and time.monotonic() - started < src.idle_renew:
        t0 = time.monotonic()
        resps = client.idle_check(timeout=IDLE_TICK)
        if not resps and time.monotonic() - t0 < IDLE_TICK / 2:
            # imapclient returns [] at once on EOF: the server went away. Do not call
            # idle_done on a dead socket (it can hang); drop the connection instead.
            raise ConnectionLost("the server closed the connection during IDLE")
        for r in resps:
            if len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT"):
                news = True
            elif r and r[0] in (b"NO", b"BAD"):  # e.g. Dovecot when the folder is deleted: re-select
                news = True
            elif r and r[0] == b"BYE":
                raise ConnectionLost(f"server said BYE: {r[1:]!r}")
    # DONE gets an answer within the socket's read timeout, or raises: never hangs.
    client.idle_done()
    return True  # after news or the renewal time: a scan is cheap (one SEARCH) and is the truth
