"""The embedded CRM turning read-only for a while: mail waits in `retrying`, then lands.

How the fault is made: the tests run as root, and root writes a file whatever its mode bits
say (chmod 0444 changes nothing; `chattr +i` and read-only mounts need rights this machine
does not give). So the fault is made one level down, where it bites: every connection the
gateway checks out to the CRM file while the fault lasts is put into SQLite's `query_only`
mode. SQLite then refuses each write with SQLITE_READONLY — "attempt to write a readonly
database", the very error a connection opened on a read-only file gives — and, like such a
connection, it stays read-only after the fault ends. Only a fresh connection is writable
again, which is what the gateway must open before it retries.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.mail import make_mail

N = 12


class ReadOnlyFault:
    """While `on`, connections checked out to `path` turn read-only and stay so."""

    def __init__(self, path: Path) -> None:
        self.path = str(path.resolve())
        self.on = threading.Event()
        self.turned = 0

    def checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if not self.on.is_set() or not isinstance(dbapi_conn, sqlite3.Connection):
            return
        files = {row[2] for row in dbapi_conn.execute("PRAGMA database_list")}
        if self.path in files:
            dbapi_conn.execute("PRAGMA query_only = ON")
            self.turned += 1


@pytest.fixture
def fault(home: Any) -> Iterator[ReadOnlyFault]:
    f = ReadOnlyFault(home.root / "var" / "crm.db")
    sa.event.listen(sa.pool.Pool, "checkout", f.checkout)
    try:
        yield f
    finally:
        sa.event.remove(sa.pool.Pool, "checkout", f.checkout)


def test_a_crm_read_only_for_a_while_delays_mail_and_loses_none(home: Any, fault: ReadOnlyFault) -> None:
    for i in range(N):
        home.drop("VLeads", make_mail(sender=f"Person {i} <p{i}@far{i}.example>", subject=f"hello {i}"))
    gw = home.gateway()  # one gateway for the whole story: its pooled connections live on
    try:
        fault.on.set()
        assert gw.run_once() == {"retrying": N}
        assert gw.run_once() == {"retrying": N}  # a second attempt, the fault still there
        assert fault.turned > 0
        led = home.ledger()
        try:
            reasons = {row.reason for row in led.messages_in(["retrying"])}
        finally:
            led.close()
        assert reasons and all("readonly database" in r for r in reasons), reasons
        with sqlite3.connect(home.root / "var" / "crm.db") as db:  # outside the pool: the fault does not touch it
            assert db.execute("SELECT count(*) FROM leads").fetchone() == (0,)

        fault.on.clear()  # the file is writable again; the connections met the fault are not
        assert gw.run_once() == {"done": N}  # the last of three attempts: a stale connection would quarantine
    finally:
        gw.close()
    leads = home.dump()["leads"]
    assert sorted(e for lead in leads for e in lead["emails"]) == sorted(f"p{i}@far{i}.example" for i in range(N))
    assert home.states() == {"done": N}
