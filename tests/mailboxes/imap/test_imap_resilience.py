"""IMAP source against a real Dovecot when things go wrong around it: mail announced during a
long scan, a ledger error inside a folder loop, a connection cut during LOGIN, IDLE notices
that come late (the last two through `tests/mailboxes/imap/proxy.py`, a TCP proxy in front of Dovecot)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from gateway.mailboxes.imap import source as imap_source
from gateway.runtime.intake import Intake
from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import message_id_of, wait_for
from tests.mailboxes.imap.proxy import ImapProxy


@pytest.fixture
def proxy(dovecot):
    p = ImapProxy(dovecot)
    try:
        yield p
    finally:
        p.close()


def test_mail_appended_during_a_long_scan_is_picked_up_without_waiting_for_the_idle_renewal(imap_home, dovecot, monkeypatch):
    """Dovecot announces the new mail inside the answer to the scan's own FETCH and never again
    in the IDLE that follows: the scan must look again before idling (not wait 540 s)."""
    old = [make_mail(sender=f"O{i} <o{i}@old{i}.org>", subject=f"Backlog {i}") for i in range(3)]
    dovecot.multiappend("VLeads", old)
    scanning, appended = threading.Event(), threading.Event()
    original = Intake.hand_over

    def slow_hand_over(self: Intake, items: Any, **kw: Any) -> list[int]:
        if not scanning.is_set():  # the first copy of the scan: held until the new mail is in
            scanning.set()
            appended.wait(120)
        return original(self, items, **kw)

    monkeypatch.setattr(Intake, "hand_over", slow_hand_over)
    home = imap_home(folders=["VLeads"], source={"batch": 1})  # one FETCH per mail: several answers follow
    home.start()
    assert scanning.wait(60), "the scan did not start"
    new = [make_mail(sender=f"N{i} <n{i}@new{i}.org>", subject=f"During the scan {i}") for i in range(3)]
    for raw in new:
        dovecot.append("VLeads", raw)
    appended.set()
    # Well inside the 540 s IDLE renewal, generous for a busy machine.
    for raw in old + new:
        wait_for(lambda raw=raw: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), 60, "every mail tagged")
    home.stop()
    assert home.states() == {"done": 6}


def test_a_ledger_error_in_a_folder_loop_is_survived_shown_in_status_and_mail_still_flows(imap_home, dovecot, monkeypatch):
    home = imap_home(folders=["VLeads"])
    gw = home.start()
    home.wait_idle("VLeads")
    ledger = gw.ledger
    original = ledger.set_cursor
    broken = {"on": True, "raised": 0}

    def set_cursor(*args: Any, **kw: Any) -> None:
        if broken["on"]:
            broken["raised"] += 1
            raise OperationalError("UPDATE cursors SET value=?", {}, sqlite3.OperationalError("database is locked"))
        return original(*args, **kw)

    monkeypatch.setattr(ledger, "set_cursor", set_cursor)
    first = make_mail(sender="Ada <ada@a.org>", subject="While the ledger fails")
    dovecot.append("VLeads", first)
    wait_for(lambda: broken["raised"] >= 2, 60, "the cursor write failing again after a back-off")
    st = home.source_status()
    assert st["connected"] is False and not st["folders"]["VLeads"]["connected"]
    assert "OperationalError" in st["folders"]["VLeads"]["last_error"]
    assert "database is locked" in st["last_error"]
    cli = home.status_json()["sources"][0]
    assert cli["connected"] is False and "database is locked" in cli["last_error"]
    # the folder's watch is restarted after its back-off, and status says how often and why
    assert st["watch"] == "reconnecting" and st["restarts"] >= 1 and "database is locked" in st["restart_reason"]

    broken["on"] = False
    wait_for(lambda: home.tagged("VLeads", message_id_of(first), "CRM_sync", "Synced"), 120, "the first mail tagged")
    later = make_mail(sender="Bea <bea@b.org>", subject="After the ledger is back")
    dovecot.append("VLeads", later)
    wait_for(lambda: home.tagged("VLeads", message_id_of(later), "CRM_sync", "Synced"), 60, "the later mail tagged")
    wait_for(lambda: home.source_status()["connected"], what="connected again")
    st = home.source_status()
    assert st["last_error"] == "" and st["folders"]["VLeads"]["last_error"] == ""
    home.stop()
    assert home.states() == {"done": 2}
    assert sorted(e["subject"] for e in home.dump()["emails"]) == ["After the ledger is back", "While the ledger fails"]


def test_a_connection_cut_during_login_is_not_a_refused_login(imap_home, dovecot, proxy, monkeypatch):
    caps: list[float | None] = []
    original = imap_source.Backoff.next

    def recorded(self: Any, cap: float | None = None) -> float:
        caps.append(cap)
        return original(self, cap)

    monkeypatch.setattr(imap_source.Backoff, "next", recorded)
    proxy.cut_logins = 10**6
    home = imap_home(folders=["VLeads"], source={"host": proxy.host, "port": proxy.port})
    home.start()
    wait_for(lambda: proxy.cut >= 3, 60, "three logins cut")
    st = home.source_status()
    assert "closed during login" in st["last_error"] and "refused" not in st["last_error"], st["last_error"]
    assert st["connected"] is False
    cli = home.status_json()["sources"][0]
    assert "closed during login" in cli["last_error"] and "refused" not in cli["last_error"]
    out = home.cli("status").stdout
    assert "closed" in out and "refused" not in out
    assert caps and imap_source.AUTH_BACKOFF_MAX not in caps  # the network back-off (to 60 s), not the 5-minute one

    proxy.cut_logins = 0  # the network heals
    raw = make_mail(sender="Cid <cid@c.org>", subject="After the cuts")
    dovecot.append("VLeads", raw)
    wait_for(lambda: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), 90, "mail flowing after the cuts")
    home.stop()

    caps.clear()
    wrong = imap_home(folders=["VLeads"], password="wrong")  # the real Dovecot refusing a bad password
    wrong.start()
    wait_for(lambda: "refused" in wrong.source_status()["last_error"], 60, "the refusal")
    assert "login as alice" in wrong.source_status()["last_error"]
    assert "closed during login" not in wrong.source_status()["last_error"]
    assert imap_source.AUTH_BACKOFF_MAX in caps
    wrong.stop()


def test_idle_notices_that_come_late_are_flagged_in_status(imap_home, dovecot, proxy, caplog):
    home = imap_home(folders=["VLeads"], source={"host": proxy.host, "port": proxy.port})
    home.start()
    home.wait_idle("VLeads")
    wait_for(proxy.idling, 60, "the folder in IDLE")
    prompt = make_mail(sender="Dan <dan@d.org>", subject="Announced at once")
    dovecot.append("VLeads", prompt)
    wait_for(lambda: home.tagged("VLeads", message_id_of(prompt), "CRM_sync"), 60, "the first mail tagged")
    folder = home.source_status()["folders"]["VLeads"]
    assert folder["idle_late"] is False and folder["idle_late_count"] == 0

    proxy.delay_exists = 15.0  # as Dovecot polling every 30 s when out of inotify instances
    wait_for(proxy.idling, 60, "the folder in IDLE again")
    late = make_mail(sender="Eli <eli@e.org>", subject="Announced late")
    with caplog.at_level(logging.WARNING, logger="gateway.imap"):
        dovecot.append("VLeads", late)
        wait_for(lambda: home.tagged("VLeads", message_id_of(late), "CRM_sync"), 90, "the late mail tagged")
        folder = wait_for(lambda: (f := home.source_status()["folders"]["VLeads"])["idle_late"] and f, 30, "idle late")
    assert folder["idle_late_count"] == 1 and folder["idle_delay"] >= 10
    assert any("announced new mail" in r.getMessage() and "max_user_instances" in r.getMessage() for r in caplog.records)
    home.gw.write_status()
    out = home.cli("status").stdout
    assert "idle late" in out, out
    cli = {f["folder"]: f for f in home.status_json()["sources"][0]["folders"]}
    assert cli["VLeads"]["idle_late"] is True
    home.stop()
