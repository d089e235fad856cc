"""The lease task's answer to the sources: a gateway that cannot renew stops watching a
mailbox before its lease ends in the ledger, and a stop gives every lease back."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from gateway.ledger.leases import lease_rows, ledger_time
from gateway.runtime.leases import LeaseKeeper, mailboxes_of
from tests.waiting import wait_for, wait_until


def keeper(home, lease):
    import yaml

    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["gateway"] = {"name": "solo", "lease": lease}
    home.config_path.write_text(yaml.safe_dump(cfg))
    config = home.config()
    led = home.ledger()
    sources = [SimpleNamespace(name="local", account="me@example.com"), SimpleNamespace(name="bcc")]
    return LeaseKeeper(config, led, sources), led


def test_a_source_without_a_mailbox_is_leased_by_nobody():
    assert mailboxes_of(SimpleNamespace(name="bcc")) == []  # the SMTP intake listens on every gateway
    assert [m.account for m in mailboxes_of(SimpleNamespace(name="ews", mailboxes=["a@x", "b@x"]))] == ["a@x", "b@x"]


def test_unrenewed_the_mailbox_is_let_go_before_its_lease_ends_in_the_ledger(home):
    k, led = keeper(home, lease=8.0)
    try:
        k.join()
        assert k.holds("local", "me@example.com") and k.owns_work("local", "me@example.com")
        assert k.owns_work("bcc", "x") and not k.holds("bcc", "x")  # no lease: its work is anyone's
        # no more rounds (the database away, the task stuck): the answer turns to no by itself
        assert wait_until(lambda: not k.holds("local", "me@example.com"), timeout=60, step=0.02)
        row = next(r for r in lease_rows(led) if r.mailbox.source == "local")
        assert row.owner == "solo" and row.expires_at > ledger_time(led)  # still ours in the ledger: a margin left
    finally:
        led.close()


def test_the_task_renews_and_a_stop_gives_the_leases_back(home):
    k, led = keeper(home, lease=1.0)
    stop = threading.Event()
    try:
        k.join()
        t = threading.Thread(target=k.run, args=(stop,), daemon=True)
        t.start()
        first = next(r.expires_at for r in lease_rows(led))
        assert wait_for(lambda: next(r.expires_at for r in lease_rows(led)) > first, timeout=30)
        assert k.holds("local", "me@example.com")
        stop.set()
        t.join(30)
        k.leave()
        assert not k.holds("local", "me@example.com")
        assert [r.owner for r in lease_rows(led)] == [None]
    finally:
        led.close()
