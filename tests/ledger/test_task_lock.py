"""`NamedLock`, the lock `reconcile --fix` holds: a second holder is told it waits and gets the
lock once the first lets go; on a PostgreSQL ledger the lock is the database's (gateways on
several machines), on SQLite a file of its own (this machine's processes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from gateway.ledger.locks import NamedLock
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
    first = NamedLock(tmp_path / "locks", "reconcile-fix", engine)
    second = NamedLock(tmp_path / "locks", "reconcile-fix", engine)
    order: list[str] = []
    told = threading.Event()
    got = threading.Event()

    def other() -> None:
        with second.held(waiting=lambda: (order.append("told to wait"), told.set())):
            order.append("second holds")
            got.set()

    with first.held(waiting=lambda: order.append("first waited")):
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
