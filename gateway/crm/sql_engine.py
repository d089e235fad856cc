"""Engine and error boundary of the embedded CRM: SQLite tuned for short concurrent
transactions (WAL, busy timeout, `BEGIN IMMEDIATE` for writes, no BEGIN at all for a read of
one statement: execution option `crm_single_read`), PostgreSQL with pre-ping, and the mapping
of driver errors to `Retryable` / `Permanent`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from gateway.errors import ConfigError, Permanent, Retryable

P = ParamSpec("P")
T = TypeVar("T")


def translate_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Map SQLAlchemy/driver errors to the gateway's two kinds at the connector boundary."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (sa_exc.TimeoutError, sa_exc.DisconnectionError) as e:  # pool exhausted, connection dropped
            raise Retryable(f"crm database unavailable: {e}") from e
        except sa_exc.DBAPIError as e:
            if _transient(e):
                raise Retryable(f"crm database unavailable: {_reason(e)}") from e
            raise Permanent(f"crm database refused the data: {_reason(e)}") from e
        except sa_exc.SQLAlchemyError as e:
            raise Permanent(f"crm database error: {e}") from e

    return wrapper


_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o", "readonly database")
# Faults that stay with the connection that met them: SQLite opens a file it cannot write
# read-only and keeps it so, and a PostgreSQL session on a standby stays read-only. The
# connection is dropped (and the pool with it) so the retry opens a fresh one; a lock or a
# busy file passes on the same connection.
_SQLITE_REOPEN = ("unable to open", "disk i/o", "readonly database")
_PG_REOPEN = {"25006"}  # read_only_sql_transaction: a failover left us on a standby


def _reopen_after(ctx: sa.engine.ExceptionContext) -> None:
    orig = ctx.original_exception
    if type(orig).__module__.startswith("sqlite3"):
        stale = any(word in str(orig).lower() for word in _SQLITE_REOPEN)
    else:
        stale = getattr(orig, "sqlstate", None) in _PG_REOPEN
    if stale:
        ctx.is_disconnect = True  # SQLAlchemy invalidates the connection and the pool


def _transient(e: sa_exc.DBAPIError) -> bool:
    """Locks, lost connections, timeouts, deadlocks: worth trying again later."""
    if e.connection_invalidated or isinstance(e, sa_exc.InterfaceError):
        return True
    if not isinstance(e, sa_exc.OperationalError):
        return False
    if type(e.orig).__module__.startswith("sqlite3"):  # SQLite reports syntax errors this way too
        return any(word in str(e.orig).lower() for word in _SQLITE_TRANSIENT)
    return True  # psycopg: connection refused/lost, timeouts, deadlocks, serialization failures


def _reason(e: sa_exc.DBAPIError) -> str:
    return str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)


def make_engine(url: str, busy_timeout: float = 30) -> sa.Engine:
    """An engine tuned for short transactions: SQLite in WAL with a busy timeout (seconds)."""
    try:
        u = sa.make_url(url)
    except sa_exc.ArgumentError as e:
        raise ConfigError(f"crm.url: not a database URL: {url!r}") from e
    if u.get_backend_name() == "sqlite":
        database = u.database or ""
        memory = database in ("", ":memory:")
        if not memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kw: dict[str, Any] = {"connect_args": {"timeout": busy_timeout, "check_same_thread": False}}
        if memory:
            kw["poolclass"] = sa.StaticPool  # one shared connection: for quick single-thread use only
        engine = sa.create_engine(u, **kw)
        if not memory:  # before the BEGIN listener below: the lock is taken first
            from gateway.database.writer_lock import SqliteWriterLock

            SqliteWriterLock(str(Path(database).expanduser())).attach(
                engine, is_write=lambda conn: conn.get_execution_options().get("crm_write", False)
            )
        _sqlite_events(engine, wal=not memory)
        sa.event.listen(engine, "handle_error", _reopen_after)
        return engine
    if u.get_backend_name() == "postgresql":
        engine = sa.create_engine(u, pool_pre_ping=True, connect_args={"connect_timeout": max(1, int(min(busy_timeout, 10)))})
        sa.event.listen(engine, "handle_error", _reopen_after)
        return engine
    raise ConfigError(f"crm.url: the sql backend supports sqlite and postgresql, not {u.get_backend_name()!r}")


def _sqlite_events(engine: sa.Engine, wal: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        if options.get("crm_single_read", False):
            return  # one SELECT on its own: SQLite runs it in its own read transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("crm_write", False) else "BEGIN")
