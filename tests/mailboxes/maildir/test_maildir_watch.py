"""The Maildir watcher keeps watching (inotify) after a ledger error, instead of falling back
to polling for the rest of the process's life."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy.exc import OperationalError

from tests.fixtures import FOLDERS, Home
from tests.mail import make_mail
from tests.waiting import wait_for


def test_one_database_is_locked_does_not_turn_the_watcher_into_polling(tmp_path, caplog):
    # A poll interval far longer than the waits below: only inotify can pick the mail up in time.
    home = Home(
        tmp_path,
        extra={
            "sources": [
                {
                    "name": "local",
                    "type": "maildir",
                    "path": "var/mail",
                    "layout": "fs",
                    "owner": ["me@example.com"],
                    "crm_user": "me@example.com",
                    "folders": FOLDERS,
                    "poll_interval": 600,
                }
            ]
        },
    )
    gw = home.gateway()
    source = gw.sources[0]
    original = gw.ledger.receive_many
    failures = {"left": 1}

    def receive_many(*args: Any, **kw: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT INTO locations", {}, sqlite3.OperationalError("database is locked"))
        return original(*args, **kw)

    gw.ledger.receive_many = receive_many
    stop = threading.Event()
    runner = threading.Thread(target=gw.run, args=(stop,), name="gateway", daemon=True)
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.maildir"):
            runner.start()
            assert wait_for(lambda: source.last_sync is not None, 60), "the first scan"
            home.drop("VLeads", make_mail(sender="Ann <ann@a.org>", subject="Hit the lock"))
            assert wait_for(lambda: home.states() == {"done": 1}, 60), home.states()
        assert failures["left"] == 0
        assert any("database is locked" in r.getMessage() for r in caplog.records)
        st = source.status()
        assert st["mode"] == "push" and st["last_error"] == ""  # watching (inotify), not polling

        home.drop("VContacts", make_mail(sender="Ben <ben@b.org>", subject="Dropped later"))
        assert wait_for(lambda: home.states() == {"done": 2}, 60), home.states()
        gw.write_status()
        proc = home.cli("status", "--json", check=True)
        local = json.loads(proc.stdout)["sources"][0]
        assert local["mode"] == "push" and local["last_error"] == ""
    finally:
        stop.set()
        runner.join(60)
        gw.close()
    assert sorted(e["subject"] for e in home.dump()["emails"]) == ["Dropped later", "Hit the lock"]
