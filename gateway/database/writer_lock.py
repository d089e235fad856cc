"""One writer at a time on a SQLite file, across threads and worker processes.

Shared by the ledger and the embedded CRM, which both keep SQLite files written by several
workers at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine


class SqliteWriterLock:
    """One writer at a time on a SQLite file, across threads and processes, without sleeping.

    SQLite's busy handler retries a locked database after sleeps of 1 to 100 ms, so short
    write transactions from several workers spend most of their time asleep. Taking this
    flock before `BEGIN IMMEDIATE` makes the next writer wake the moment the lock is free.
    """

    def __init__(self, db_path: str) -> None:
        self.path = f"{db_path}.wlock"

    def attach(self, engine: Engine, *, is_write: Callable[[Any], bool]) -> None:
        """Take the lock when a write transaction begins; let it go when it ends."""
        from sqlalchemy import event

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            if is_write(conn):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                conn.info["writer_lock_fd"] = fd  # the pool record's info: seen again at check-in

        # Released when the connection goes back to the pool: after COMMIT or ROLLBACK has run
        # (the commit event fires before it), and also when a broken connection is invalidated.
        def _release(_dbapi_conn: Any, record: Any, *_: Any) -> None:
            fd = record.info.pop("writer_lock_fd", None) if record is not None else None
            if fd is not None:
                os.close(fd)

        event.listen(engine.pool, "checkin", _release)
        event.listen(engine.pool, "invalidate", _release)
        event.listen(engine.pool, "soft_invalidate", _release)
