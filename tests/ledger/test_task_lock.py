"""`NamedLock`, the lock `reconcile --fix` holds: a second holder is told it waits and gets the
lock once the first lets go; on a PostgreSQL ledger the lock is the database's (gateways on
several machines), on SQLite a file of its own (this machine's processes)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from gateway.ledger.locks import NamedLock, _key_hash
from tests.crm.sql_backends import postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield eng
        eng.dispose()
        return
    with postgres_url() as url:
        eng = create_engine(url)
        yield eng
        eng.dispose()


def test_the_second_holder_waits_for_the_first(engine: Engine, tmp_path: Path) -> None:
    # two objects, as two processes (or machines) have: each with its own thread lock
    name = f"reconcile-fix-{uuid.uuid4().hex[:8]}"  # other runs may share the PostgreSQL server
    first = NamedLock(tmp_path / "locks", name, engine)
    second = NamedLock(tmp_path / "locks", name, engine)
    order: list[str] = []
    told = threading.Event()
    got = threading.Event()

    def other() -> None:
        with second.held(waiting=lambda: (order.append("told to wait"), told.set())):
            order.append("second holds")
            got.set()

    with first.held(waiting=lambda: order.append("first waited")):
        if engine.dialect.name == "postgresql":  # held by a session, not an open transaction
            with engine.connect() as c:
                states = c.execute(
                    text(
                        "SELECT a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                        "AND ((l.classid::bigint << 32) | l.objid::bigint) = (:k & x'FFFFFFFFFFFFFFFF'::bigint)"
                    ),
                    {"k": _key_hash("task:" + name)},
                ).scalars()
                assert list(states) == ["idle"]
        t = threading.Thread(target=other)
        t.start()
        assert told.wait(120), "the second holder was not told it waits"
        assert not got.is_set()
        order.append("first lets go")
    t.join(120)
    assert order == ["told to wait", "first lets go", "second holds"]
    # free again: nobody is told to wait
    waited: list[str] = []
    with first.held(waiting=lambda: waited.append("x")):
        pass
    assert waited == []
