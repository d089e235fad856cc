"""Databases for the embedded CRM's tests: SQLite in a temp dir, or a throw-away schema in a
PostgreSQL database made for this test run on 127.0.0.1:5432 (dropped at exit; tests skip
with the reason when no server answers)."""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))
PG_HOST = os.environ.get("CRM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CRM_TEST_PG_PORT", "5432"))
_pg_error: list[str] = []  # remembered so a missing server costs one timeout, not one per test


def _admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            return psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="test", autocommit=True, connect_timeout=30
            ), user
        except psycopg.Error as e:
            last = e
    raise RuntimeError(str(last).strip())


_session_db: list[tuple[str, str]] = []  # (user, database): one database per test run


def _database() -> tuple[str, str]:
    """Create this run's database once (a CREATE DATABASE costs ~0.2 s; a schema ~1 ms)."""
    if _pg_error:
        pytest.skip(_pg_error[0])
    if not _session_db:
        try:
            admin, user = _admin_connect()
        except (ImportError, RuntimeError) as e:
            _pg_error.append(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} as postgres/root: {e}")
            pytest.skip(_pg_error[0])
        name = f"crm_test_{uuid.uuid4().hex[:12]}"
        with admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        _session_db.append((user, name))
        atexit.register(_drop_database, name)
    return _session_db[0]


def _drop_database(name: str) -> None:
    try:
        admin, _ = _admin_connect()
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - best effort at interpreter exit
        pass


@contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema (as good as a fresh database: the URL sets its search_path)."""
    import psycopg

    user, db = _database()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=db, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{db}?options=-csearch_path%3D{schema}"
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'crm.db'}"  # `var/` missing on purpose: created on open
    else:
        with postgres_url() as url:
            yield url
