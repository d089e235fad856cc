"""Many mailboxes through one `imap` entry and a master user, against a real Dovecot with 200
users: every mailbox watched without a thread per mailbox, mail tagged in the mailbox it
came to, a Dovecot restart without a login storm, a killed connection restarted and shown."""

from __future__ import annotations

import random
import re
import threading
import urllib.request
from pathlib import Path

from tests.mail import make_mail
from tests.mailboxes.imap.dovecot import Dovecot, free_port
from tests.mailboxes.imap.fixtures import FOLDERS, MANY, ImapHome, fleet, message_id_of, wait_for

USERS = [f"u{i:03d}" for i in range(MANY)]
# What Dovecot logs when it turns connections away: a login storm, or limits set too low.
REFUSALS = re.compile(r"process_limit|client_limit|Maximum number of connections|auth failed|Too many", re.I)


def _tagged(dovecot: Dovecot, user: str, raw: bytes, folder: str = "VLeads") -> bool:
    flags = dovecot.flags(folder, user=user).get(message_id_of(raw), set())
    return {"CRM_sync", "Synced"} <= flags


def _page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:  # noqa: S310 (a local test server)
        return r.read().decode()


def _accounts(home: ImapHome) -> dict[str, str]:
    """Subject → the account of its copy, as the ledger recorded it."""
    led = home.ledger()
    try:
        return {row.subject: loc.ref.account for row in led.messages_in(["done"]) for loc in led.locations_of(row.id)}
    finally:
        led.close()


def test_two_hundred_mailboxes_from_one_entry_are_watched_with_the_threads_of_twenty(imap_home, many_dovecot, tmp_path):
    listed = tmp_path / "mailboxes.txt"
    listed.write_text("# the sales team\n" + "\n".join(USERS[:20]) + "\n")
    home = imap_home(server=many_dovecot, source=fleet(mailboxes_file=str(listed), folders=FOLDERS))  # 800 connections
    home.start()
    wait_for(lambda: home.watching(USERS[:20]), 120, "20 mailboxes watched")
    threads_20 = threading.active_count()

    listed.write_text("\n".join(USERS) + "\n")
    home.gw.reload()  # as SIGHUP does; the file is also read again every five minutes
    wait_for(lambda: home.watching(USERS), 300, "200 mailboxes watched")
    threads_200 = threading.active_count()
    assert threads_200 - threads_20 < 4, (threads_20, threads_200)

    boxes = home.mailboxes()
    assert len(boxes) == MANY and {b["watch"] for b in boxes.values()} == {"watching"}
    folders = home.status_json()["sources"][0]["folders"]
    assert {f["folder"]: (f["mode"], f["connected"]) for f in folders} == {f: ("idle", True) for f in FOLDERS}
    assert home.status_json()["service"]["threads"] == threading.active_count()

    chosen = random.Random(14).sample(USERS, 5)
    raws = {u: make_mail(sender=f"Buyer {u} <buyer.{u}@shop{u}.example>", subject=f"For {u}") for u in chosen}
    for u, raw in raws.items():
        many_dovecot.append("VLeads", raw, user=u)
    for u, raw in raws.items():
        wait_for(lambda u=u, raw=raw: _tagged(many_dovecot, u, raw), 120, f"the mail to {u} tagged")
    assert _accounts(home) == {f"For {u}": u for u in chosen}  # each copy is its mailbox's
    home.stop()
    assert home.states() == {"done": 5}


def test_dovecot_restarted_under_two_hundred_mailboxes_all_come_back_without_a_login_storm(imap_home, many_dovecot):
    home = imap_home(server=many_dovecot, source=fleet(USERS, max_logins=8, folders=FOLDERS))
    home.start()
    wait_for(lambda: home.watching(USERS), 300, "200 mailboxes watched")
    before = [make_mail(sender=f"Early {u} <early.{u}@e{u}.example>", subject=f"Before {u}") for u in USERS[:3]]
    for u, raw in zip(USERS[:3], before, strict=True):
        many_dovecot.append("VLeads", raw, user=u)
    for u, raw in zip(USERS[:3], before, strict=True):
        wait_for(lambda u=u, raw=raw: _tagged(many_dovecot, u, raw), 120, f"the first mail of {u} tagged")
    log_before = len(many_dovecot.log())

    many_dovecot.stop()
    wait_for(
        lambda: all(not b.watches or b.watch_state.value != "watching" for b in home.gw.sources[0].boxes.values()),
        120,
        "every mailbox noticing",
    )
    meanwhile = {u: make_mail(sender=f"Late {u} <late.{u}@l{u}.example>", subject=f"Meanwhile {u}") for u in USERS[-3:]}
    for n, (u, raw) in enumerate(meanwhile.items()):
        many_dovecot.deliver("VLeads", raw, f"meanwhile{n}.eml", user=u)  # delivered while the server is down
    many_dovecot.start()

    wait_for(lambda: home.watching(USERS), 300, "200 mailboxes watched again")
    for u, raw in meanwhile.items():
        wait_for(lambda u=u, raw=raw: _tagged(many_dovecot, u, raw), 120, f"the mail delivered meanwhile to {u} tagged")
    after = many_dovecot.log()[log_before:]
    assert not REFUSALS.findall(after), [line for line in after.splitlines() if REFUSALS.search(line)][:5]
    boxes = home.mailboxes()
    assert all(b["restarts"] >= 1 for b in boxes.values())  # each connection was lost once and came back
    home.stop()
    assert home.states() == {"done": 6}
    assert sorted(e["subject"] for e in home.emails()) == sorted(
        [f"Before {u}" for u in USERS[:3]] + [f"Meanwhile {u}" for u in USERS[-3:]]
    )


def test_a_killed_connection_comes_back_and_status_says_it_was_restarted_and_why(imap_home, many_dovecot):
    users = USERS[:3]
    port = free_port()
    home = imap_home(server=many_dovecot, source=fleet(users), extra={"web": {"listen": f"127.0.0.1:{port}"}})
    home.start()
    wait_for(lambda: home.watching(users), 120, "3 mailboxes watched")
    assert {u: b["restarts"] for u, b in home.mailboxes().items()} == {u: 0 for u in users}

    assert many_dovecot.kill_sessions("u001") >= 1  # the server's process for that connection dies
    box = wait_for(lambda: (b := home.mailboxes()["u001"])["restarts"] >= 1 and b, 60, "the restart counted")
    assert "lost" in box["restart_reason"], box
    wait_for(lambda: home.watching(users), 120, "watched again")
    assert {u: b["restarts"] for u, b in home.mailboxes().items() if u != "u001"} == {"u000": 0, "u002": 0}

    raw = make_mail(sender="Kim <kim@k.example>", subject="After the kill")
    many_dovecot.append("VLeads", raw, user="u001")
    wait_for(lambda: _tagged(many_dovecot, "u001", raw), 60, "mail to the restarted mailbox tagged")
    out = home.cli("status").stdout
    assert "3 mailboxes" in out and "restarts 1" in out, out
    page = wait_for(lambda: _page(port), 60, "the status page")
    row = re.search(r"<tr><td>mail</td><td>u001</td><td>(\w+)</td><td>(\d+)</td><td>([^<]*)</td>", page)
    assert row and row.group(1) == "watching" and int(row.group(2)) >= 1 and "lost" in row.group(3), page[-800:]
    home.stop()


def test_master_login_by_sasl_plain_authzid(imap_home, many_dovecot):
    home = imap_home(server=many_dovecot, source=fleet(["u007"], master_login="authzid"))
    home.start()
    wait_for(lambda: home.watching(["u007"]), 60, "watched")
    raw = make_mail(sender="Lou <lou@l.example>", subject="Through PLAIN")
    many_dovecot.append("VLeads", raw, user="u007")
    wait_for(lambda: _tagged(many_dovecot, "u007", raw), 60, "tagged")
    home.stop()
    assert _accounts(home) == {"Through PLAIN": "u007"}


def test_a_wrong_master_password_is_shown_per_mailbox_and_the_list_file_is_checked(imap_home, many_dovecot, tmp_path: Path):
    home = imap_home(server=many_dovecot, source=fleet(["u001", "u002"], password="wrong"))
    home.start()
    wait_for(lambda: (b := home.mailboxes()) and all("refused" in x["last_error"] for x in b.values()), 60, "the refusals")
    assert "login as u001*admin" in home.mailboxes()["u001"]["last_error"]
    home.stop()
    proc = home.cli("check")  # logs in to the first mailbox through the master user
    assert proc.returncode != 0 and "login as u001*admin" in proc.stdout + proc.stderr, proc.stdout + proc.stderr

    listed = tmp_path / "list.txt"
    listed.write_text("u001\nnot a user\n")
    bad = imap_home(server=many_dovecot, source=fleet(mailboxes_file=str(listed)))
    proc = bad.cli("check")
    assert proc.returncode != 0
    assert f"sources.0.mailboxes_file: {listed}:2:1: 'not a user'" in proc.stdout + proc.stderr


def test_beyond_the_servers_connection_budget_folders_are_polled_and_mail_still_flows(imap_home, many_dovecot):
    users = USERS[:4]
    home = imap_home(server=many_dovecot, source=fleet(users, max_connections=2, poll_interval=1))
    home.start()
    wait_for(
        lambda: sorted(b["watch"] for b in home.mailboxes().values()) == ["polling"] * 2 + ["watching"] * 2,
        120,
        "2 in IDLE, 2 polled",
    )
    polled = [u for u, b in home.mailboxes().items() if b["watch"] == "polling"]
    raw = make_mail(sender="Max <max@m.example>", subject="To a polled mailbox")
    many_dovecot.append("VLeads", raw, user=polled[0])
    wait_for(lambda: _tagged(many_dovecot, polled[0], raw), 60, "mail to a polled mailbox tagged")
    st = home.status_json()["sources"][0]
    assert st["watching"] == {"polling": 2, "watching": 2}
    home.stop()


def test_a_mailbox_the_gateway_no_longer_holds_is_not_watched_until_it_holds_it_again(imap_home, many_dovecot, monkeypatch):
    from gateway.runtime.intake import Intake

    let_go: set[str] = set()
    monkeypatch.setattr(Intake, "holds", lambda self, source, account: account not in let_go)
    users = USERS[:3]
    home = imap_home(server=many_dovecot, source=fleet(users))
    home.start()
    wait_for(lambda: home.watching(users), 120, "3 mailboxes watched")

    let_go.add("u001")  # another gateway took it (its lease)
    wait_for(lambda: home.mailboxes()["u001"]["watch"] == "not held", 60, "u001 let go")
    raw = make_mail(sender="Ned <ned@n.example>", subject="While another gateway holds it")
    many_dovecot.append("VLeads", raw, user="u001")
    other = make_mail(sender="Olga <olga@o.example>", subject="Still ours")
    many_dovecot.append("VLeads", other, user="u002")
    wait_for(lambda: _tagged(many_dovecot, "u002", other), 60, "mail to a held mailbox tagged")
    assert not _tagged(many_dovecot, "u001", raw)
    assert home.mailboxes()["u001"]["connected"] is False

    let_go.clear()  # held again: watched, and what came meanwhile is found from the cursor
    wait_for(lambda: _tagged(many_dovecot, "u001", raw), 60, "the mail that waited tagged")
    assert home.mailboxes()["u001"]["watch"] == "watching"
    home.stop()
    assert home.states() == {"done": 2}


def test_run_once_takes_what_is_in_every_listed_mailbox(imap_home, many_dovecot):
    users = USERS[:3]
    raws = {u: make_mail(sender=f"Pat {u} <pat.{u}@p{u}.example>", subject=f"Waiting in {u}") for u in users[:2]}
    for u, raw in raws.items():
        many_dovecot.append("VLeads", raw, user=u)
    home = imap_home(server=many_dovecot, source=fleet(users))
    proc = home.cli("run", "--once")
    assert proc.returncode == 0, proc.stderr
    assert home.states() == {"done": 2}
    assert all(_tagged(many_dovecot, u, raw) for u, raw in raws.items())
    assert _accounts(home) == {f"Waiting in {u}": u for u in users[:2]}


def test_worker_processes_tag_each_mailbox_through_its_own_master_login(imap_home, many_dovecot):
    users = USERS[:3]
    home = imap_home(server=many_dovecot, source=fleet(users), extra={"processes": 2})
    home.start()
    wait_for(lambda: home.watching(users), 120, "3 mailboxes watched")
    raws = {u: make_mail(sender=f"Quin {u} <quin.{u}@q{u}.example>", subject=f"Forked {u}") for u in users}
    for u, raw in raws.items():
        many_dovecot.append("VLeads", raw, user=u)
    for u, raw in raws.items():
        wait_for(lambda u=u, raw=raw: _tagged(many_dovecot, u, raw), 120, f"the mail to {u} tagged by a worker process")
    home.stop()
    assert home.states() == {"done": 3}


def test_with_notify_each_mailbox_watches_all_its_folders_on_one_connection(imap_home, many_dovecot):
    users = USERS[:3]
    home = imap_home(server=many_dovecot, source=fleet(users, folders=FOLDERS, notify=True))
    home.start()
    wait_for(lambda: home.watching(users), 120, "3 mailboxes watched")
    assert [len(b.watches) for b in home.gw.sources[0].boxes.values()] == [1, 1, 1]  # one connection each
    home.gw.write_status()
    folders = home.status_json()["sources"][0]["folders"]
    assert {f["folder"]: f["mode"] for f in folders} == {f: "notify" for f in FOLDERS}
    raws = {
        folder: make_mail(sender=f"Rio {n} <rio{n}@r{n}.example>", subject=f"Into {folder}")
        for n, folder in enumerate(["VContacts", "VLeads"])
    }
    for folder, raw in raws.items():  # a folder other than the first, then the first
        many_dovecot.append(folder, raw, user="u002")
        wait_for(lambda folder=folder, raw=raw: _tagged(many_dovecot, "u002", raw, folder), 60, f"the mail in {folder} tagged")
    home.stop()
    assert home.states() == {"done": 2}
