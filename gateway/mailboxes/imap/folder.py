"""One watched IMAP folder: its cursor, the scan by UID, and IDLE.

The cursor (UIDVALIDITY, last UID handed over) lives in the ledger and is the truth; IDLE (watched
by watch.py) is only a hint to scan now. A scan fetches `BODY.PEEK[]` (never `\\Seen`) in batches on an
EXAMINEd (read-only) folder, hands each copy over durably, then advances the cursor. A copy
handed over twice (a crash between hand-over and cursor) is the same ledger location, so it
is a no-op; a new UIDVALIDITY rescans from UID 1 and Message-ID dedupe keeps each mail once.

A server announces new mail once: an `* n EXISTS` that arrives inside the answer to the
scan's own SEARCH or FETCH is not repeated in the IDLE that follows, so `scan_settled` scans
again until a scan ends with no such announcement. The delay between a mail's INTERNALDATE
and the IDLE notice that woke us is measured: Dovecot out of inotify instances silently
announces only every 30 s, which `status` shows as "idle late".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from gateway.mailboxes.base import FolderRef, Found
from gateway.mailboxes.imap.account import ImapAccount

log = logging.getLogger("gateway.imap")
IDLE_RENEW = 9 * 60.0  # RFC 2177: re-issue IDLE well inside the servers' 30-minute logout; the issue asks ≤ 10 min
IDLE_LATE = 10.0  # seconds from arrival to IDLE notice beyond which the notice counts as late
LATE_MEMORY = 3600.0  # `status` flags "idle late" for an hour after the last late notice


@dataclass(frozen=True)
class Wake:
    """Why an IDLE ended: `announced` (the server said EXISTS) or not (renewal, stop).
    Wall-clock seconds, to compare with the server's INTERNALDATE."""

    idle_since: float
    at: float
    announced: bool


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
    idle_delay: float | None = None  # seconds from the newest mail's arrival to the IDLE notice, last measured
    idle_late_count: int = 0
    idle_late_at: float | None = None  # time.time() of the last late notice

    def note_idle_delay(self, delay: float) -> None:
        self.idle_delay = max(0.0, delay)
        if delay > IDLE_LATE:
            self.idle_late_count += 1
            self.idle_late_at = time.time()

    @property
    def idle_late(self) -> bool:
        return self.idle_late_at is not None and time.time() - self.idle_late_at < LATE_MEMORY

    def doc(self) -> dict[str, Any]:
        return {
            "server_name": self.server,
            "mode": self.mode,
            "connected": self.connected,
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "exists": self.exists,
            "fetched": self.fetched,
            "oversize": self.oversize,
            "last_error": self.last_error,
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "idle_late": self.idle_late,
            "idle_late_count": self.idle_late_count,
            "idle_delay": round(self.idle_delay, 1) if self.idle_delay is not None else None,
        }


def _announced(client: IMAPClient) -> bool:
    """Whether the server said `* n EXISTS` since the SELECT (imaplib keeps unsolicited
    responses per name until someone takes them; a SELECT starts afresh)."""
    return bool(client._imap.untagged_responses.pop("EXISTS", None))


def scan_settled(src: ImapAccount, client: IMAPClient, fs: FolderState, wake: Wake | None = None, *, bar: bool = True) -> int:
    """`scan`, again as long as new mail was announced during the previous one."""
    n = scan(src, client, fs, bar=bar, wake=wake)
    while _announced(client):
        log.debug("imap %s: %s: new mail announced during the scan; scanning again", src.name, fs.name)
        n += scan(src, client, fs, bar=bar)
    return n


def scan(src: ImapAccount, client: IMAPClient, fs: FolderState, *, bar: bool = True, wake: Wake | None = None) -> int:
    """Hand over every message above the cursor; return how many. After an IDLE (`wake`),
    measure how late the server announced the first mail that arrived while idling."""
    assert fs.server is not None
    info = client.select_folder(fs.server, readonly=True)
    _announced(client)  # the SELECT's own EXISTS: counted below
    uv = int(info[b"UIDVALIDITY"])
    fs.exists = int(info.get(b"EXISTS", 0))
    intake, where = src.env.intake, FolderRef(src.name, src.account, fs.name)
    cur = intake.cursor(where) or {}
    last = int(cur.get("last_uid", 0))
    if cur and int(cur.get("uidvalidity", 0)) != uv:
        log.warning(
            "imap %s: %s: UIDVALIDITY changed %s → %s; rescanning the folder (Message-ID dedupe keeps each mail once)",
            src.name,
            fs.name,
            cur.get("uidvalidity"),
            uv,
        )
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
            intake.advance(where, {"uidvalidity": uv, "last_uid": last})
        fs.last_sync = datetime.now(UTC)
        return 0
    task = src.progress_start(fs.name, len(uids)) if bar else None
    n = 0
    limit = src.max_size
    first_arrival: float | None = None  # while idling, by the server's clock
    try:
        for i in range(0, len(uids), src.config.batch):
            chunk = uids[i : i + src.config.batch]
            meta = client.fetch(chunk, ["RFC822.SIZE", "INTERNALDATE"])
            sizes = {u: int(d.get(b"RFC822.SIZE", 0)) for u, d in meta.items()}
            if wake is not None and first_arrival is None:
                first_arrival = _first_arrival(meta, wake)
            small = [u for u in chunk if u in sizes and sizes[u] <= limit]
            big = [u for u in chunk if u in sizes and sizes[u] > limit]
            bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            heads = client.fetch(big, ["BODY.PEEK[HEADER]"]) if big else {}
            batch: list[Found] = []
            for u in chunk:
                ref = src.ref(fs.name, uv, u)
                if u in bodies and b"BODY[]" in bodies[u]:
                    batch.append(Found(ref, bytes(bodies[u][b"BODY[]"])))
                elif u in heads:  # too big: headers only, the pipeline quarantines it with the reason
                    batch.append(Found(ref, bytes(heads[u].get(b"BODY[HEADER]", b"")), sizes[u]))
                    fs.oversize += 1
                # else: expunged between SEARCH and FETCH
            del bodies, heads
            # One fsync round and one ledger transaction for the batch, before the cursor moves.
            intake.hand_over(batch)
            n += len(batch)
            fs.fetched += len(batch)
            intake.advance(where, {"uidvalidity": uv, "last_uid": chunk[-1]})
            fs.last_uid = chunk[-1]
            if task is not None:
                src.progress_advance(task, len(chunk))
    finally:
        if task is not None:
            src.progress_done(task)
    if wake is not None and first_arrival is not None:
        fs.note_idle_delay(wake.at - first_arrival)
        if wake.at - first_arrival > IDLE_LATE:
            log.warning(
                "imap %s: %s: the server announced new mail %.0fs after it arrived%s (Dovecot: see "
                "fs.inotify.max_user_instances in docs/imap.md)",
                src.name,
                fs.name,
                wake.at - first_arrival,
                "" if wake.announced else ", found only by the IDLE renewal",
            )
    fs.last_sync = datetime.now(UTC)
    return n


def _first_arrival(meta: dict[int, dict[bytes, Any]], wake: Wake) -> float | None:
    """The earliest INTERNALDATE after the IDLE began (whole seconds: one second of slack)."""
    times = []
    for d in meta.values():
        when = d.get(b"INTERNALDATE")
        if isinstance(when, datetime):  # imapclient gives local naive time; timestamp() reads it so
            t = when.timestamp()
            if t >= int(wake.idle_since):
                times.append(t)
    return min(times) if times else None
