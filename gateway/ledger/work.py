"""Which copies a worker has in hand, kept in the ledger so that a crash leaves a trace.

A worker records its batch before it starts (`started`) and clears it when the batch is done
(`finished`): one short transaction each per batch. A row still marked started when the next
process starts (`after_crash`), or when a worker process died, means the process died while
handling that copy: its count goes up, and past `CRASH_LIMIT` the copy is quarantined instead of
killing every restart. Rows live in the `status` table under `work:<location>` (no schema
change); `Ledger.all_status` leaves them out (gateway.ledger.reads).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from gateway.ledger.database import CHUNK
from gateway.ledger.rows import now
from gateway.ledger.schema import WORK_PREFIX as PREFIX
from gateway.ledger.schema import status

if TYPE_CHECKING:
    from gateway.ledger.store import Ledger

# Gateways on several machines may share one PostgreSQL ledger: a start counts only the marks
# its own machine left.
HOST = socket.gethostname()


def _key(pk: int) -> str:
    return f"{PREFIX}{pk}"


def started(ledger: Ledger, pks: Sequence[int]) -> None:
    """These copies are in hand now (a crash count from earlier stays)."""
    if not pks:
        return
    t = now()
    with ledger.engine.begin() as c:
        for i in range(0, len(pks), CHUNK):
            keys = [_key(pk) for pk in pks[i : i + CHUNK]]
            old = {r.key: json.loads(r.value) for r in c.execute(select(status).where(status.c.key.in_(keys)))}
            new = [k for k in keys if k not in old]
            if new:
                c.execute(
                    insert(status),
                    [
                        {"key": k, "value": json.dumps({"started": True, "crashes": 0, "host": HOST}), "updated_at": t}
                        for k in new
                    ],
                )
            for k, v in old.items():
                c.execute(
                    update(status)
                    .where(status.c.key == k)
                    .values(value=json.dumps({"started": True, "crashes": int(v.get("crashes", 0)), "host": HOST}), updated_at=t)
                )


def finished(ledger: Ledger, pks: Sequence[int]) -> None:
    if not pks:
        return
    with ledger.engine.begin() as c:
        for i in range(0, len(pks), CHUNK):
            c.execute(delete(status).where(status.c.key.in_([_key(pk) for pk in pks[i : i + CHUNK]])))


def crashed(ledger: Ledger, pks: Sequence[int] | None = None) -> dict[int, int]:
    """Count a crash for every copy still marked started (of `pks`, or all at a start) and
    unmark it; every copy with a crash count, and its count."""
    out: dict[int, int] = {}
    with ledger.engine.begin() as c:
        q = select(status).where(status.c.key.like(f"{PREFIX}%"))
        if pks is not None:
            q = select(status).where(status.c.key.in_([_key(pk) for pk in pks]))
        for r in c.execute(q).all():
            v = json.loads(r.value)
            if v.get("host", HOST) != HOST:
                continue
            crashes = int(v.get("crashes", 0)) + (1 if v.get("started") else 0)
            if v.get("started"):
                c.execute(
                    update(status)
                    .where(status.c.key == r.key)
                    .values(value=json.dumps({"started": False, "crashes": crashes, "host": HOST}), updated_at=now())
                )
            if crashes:
                out[int(r.key[len(PREFIX) :])] = crashes
    return out
