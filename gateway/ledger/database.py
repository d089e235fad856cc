"""The ledger's database connection: SQLite (one writer at a time, WAL) or PostgreSQL, and
the few statement helpers every write module shares."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

CHUNK = 500  # bound parameters per IN (…): well under SQLite's and PostgreSQL's limits


def make_engine(url: str, connections: int = 10) -> Engine:
    """`connections`: PostgreSQL's pool, sized for the threads that use the ledger at once
    (workers, the mailbox watchers' pool, the scheduler, status), never for the mailboxes."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun below, writers IMMEDIATE
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        if url != "sqlite:///:memory:":
            from gateway.database.writer_lock import SqliteWriterLock

            SqliteWriterLock(url[len("sqlite:///") :]).attach(engine, is_write=is_write)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if is_write(conn) else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=connections, max_overflow=connections // 2, pool_timeout=60)


def is_write(conn: Any) -> bool:
    """Whether a connection belongs to the ledger's writing view of its engine."""
    return bool(conn.get_execution_options().get("ledger_write", False))


_INSERT_IGNORE: dict[tuple[str, str], Any] = {}


def insert_ignore(conn: Any, table: Any) -> Any:
    """INSERT that skips rows whose unique key exists (SQLite OR IGNORE / PostgreSQL ON CONFLICT)."""
    key = (conn.dialect.name, table.name)
    if key not in _INSERT_IGNORE:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            _INSERT_IGNORE[key] = pg_insert(table).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            _INSERT_IGNORE[key] = sqlite_insert(table).on_conflict_do_nothing()
    return _INSERT_IGNORE[key]


def chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]
