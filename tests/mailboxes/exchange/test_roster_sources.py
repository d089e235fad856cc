"""Graph and EWS sources reaching many mailboxes from one definition: a Graph group's members,
a mailboxes file edited while the gateway runs, and one failing mailbox beside working ones.
Against the Graph and EWS doubles (graph_double.py, ews_double.py)."""

from __future__ import annotations

import html
import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.admin.operations import status_doc
from gateway.mailboxes.graph.source import GraphError
from tests.mailboxes.exchange.fixtures import MAILBOX, Running, emails, ews_source, graph_source, home_with, mail
from tests.waiting import wait_for, wait_until

ANNA, BOB, CARL = "anna@example.com", "bob@example.com", "carl@example.com"
TAGGED = [["CRM sync", "Synced"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        return html.unescape(r.read().decode())


def health(gw: Any) -> dict[str, Any]:
    return gw.sources[0].status()["mailbox_health"]


def turns_seen(double: Any, mailbox: str) -> int:
    """How often a mailbox's folders were read: a measure of turns, never of time."""
    if hasattr(double, "mime_reads") and hasattr(double, "folder_id"):  # Graph
        return double.count("GET", f"/users/{mailbox}/mailFolders/")
    return sum(1 for _t, op, mb in double.requests if op == "SyncFolderItems" and mb == mailbox)


def edit(path: Path, text: str) -> None:
    """Rewrite a roster file so that its mtime surely moves, even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = path.stat()
    if st.st_mtime_ns <= before:  # the same clock tick: move it on
        os.utime(path, ns=(st.st_atime_ns, before + 1_000_000_000))


def test_graph_watches_every_member_of_a_group_and_follows_its_changes(graph, tls, tmp_path):
    gid = graph.add_group("sales-team@example.com", [ANNA, BOB])
    nested = graph.add_group("sales-emea@example.com", [MAILBOX])
    graph.add_member(gid, nested)  # nested groups count: three members, two pages of members
    src = graph_source(graph, tls[0], mailboxes=[], mailboxes_group="sales-team@example.com", directory_refresh=0.3)
    home = home_with(tmp_path, "h", src)
    with Running(home) as gw:
        graph.deliver(ANNA, "VLeads", mail(1))
        graph.deliver(BOB, "VLeads", mail(2))
        graph.deliver(MAILBOX, "VLeads", mail(3))
        for mb in (ANNA, BOB, MAILBOX):
            assert wait_until(lambda mb=mb: graph.categories(mb, "VLeads") == TAGGED, 60), health(gw)
        assert graph.count("GET", "/transitiveMembers/microsoft.graph.user") >= 2  # paged by @odata.nextLink

        graph.add_member(gid, CARL)  # joins the group: watched after the next refresh
        graph.deliver(CARL, "VLeads", mail(4))
        assert wait_until(lambda: graph.categories(CARL, "VLeads") == TAGGED, 60), health(gw)

        graph.remove_member(gid, BOB)  # leaves: no longer synced
        assert wait_until(lambda: BOB not in health(gw), 60), health(gw)
        graph.deliver(BOB, "VLeads", mail(5))
        seen = turns_seen(graph, ANNA)
        assert wait_until(lambda: turns_seen(graph, ANNA) >= seen + 8, 60)  # two more turns for the others
        assert graph.categories(BOB, "VLeads") == [["CRM sync", "Synced"], []]
        doc = gw.sources[0].status()
        assert doc["roster_error"] == "" and sorted(doc["mailboxes"]) == sorted([ANNA, CARL, MAILBOX])
        assert all(h["state"] == "watching" for h in doc["mailbox_health"].values())
    assert sorted(e["subject"] for e in emails(home)) == [f"Quote request {n}" for n in (1, 2, 3, 4)]


def test_graph_group_by_object_id_and_a_missing_permission_named(graph, tls, tmp_path):
    gid = graph.add_group("sales-team@example.com", [ANNA])
    home = home_with(tmp_path, "a", graph_source(graph, tls[0], mailboxes=[], mailboxes_group=gid))
    graph.deliver(ANNA, "VLeads", mail(1))
    assert home.run_once().get("done") == 1
    assert graph.count("GET", "/v1.0/groups") == graph.count("GET", "/transitiveMembers/")  # no lookup by address

    graph.roles.discard("GroupMember.Read.All")
    denied = home_with(tmp_path, "b", graph_source(graph, tls[0], mailboxes=[], mailboxes_group=gid)).gateway()
    try:
        with pytest.raises(GraphError, match="403 Authorization_RequestDenied.*GroupMember.Read.All"):
            denied.sources[0].scan_once()
    finally:
        denied.close()


def test_graph_mailboxes_file_edited_while_running(graph, tls, tmp_path):
    for mb in (ANNA, BOB, CARL):
        graph.mailboxes.add(mb)
    home = home_with(tmp_path, "h", graph_source(graph, tls[0], mailboxes=[], mailboxes_file="mailboxes.txt"))
    roster = home.root / "mailboxes.txt"
    edit(roster, f"# the sales team\n{ANNA}\n\n{BOB.upper()}\n")
    with Running(home) as gw:
        graph.deliver(ANNA, "VLeads", mail(1))
        graph.deliver(BOB, "VLeads", mail(2))
        for mb in (ANNA, BOB):
            assert wait_until(lambda mb=mb: graph.categories(mb, "VLeads") == TAGGED, 60), health(gw)

        edit(roster, f"{ANNA}\n{CARL}\n")  # carl joins, bob leaves
        graph.deliver(CARL, "VLeads", mail(3))
        assert wait_until(lambda: graph.categories(CARL, "VLeads") == TAGGED, 60), health(gw)
        assert wait_until(lambda: BOB not in health(gw), 60), health(gw)
        graph.deliver(BOB, "VLeads", mail(4))
        seen = turns_seen(graph, ANNA)
        assert wait_until(lambda: turns_seen(graph, ANNA) >= seen + 8, 60)
        assert graph.categories(BOB, "VLeads") == [["CRM sync", "Synced"], []]

        roster.unlink()  # a refresh that fails keeps the last list and says why
        assert wait_until(lambda: "no such file" in gw.sources[0].status()["roster_error"], 60)
        assert sorted(gw.sources[0].status()["mailboxes"]) == [ANNA, CARL]
    assert len(emails(home)) == 3


def test_graph_one_missing_mailbox_does_not_stop_the_others(graph, tls, tmp_path):
    ghost = "ghost@example.com"  # no such user: 404 ErrorInvalidUser
    home = home_with(tmp_path, "h", graph_source(graph, tls[0], mailboxes=[ghost, MAILBOX]))
    port = free_port()
    cfg = yaml.safe_load(home.config_path.read_text())
    home.config_path.write_text(yaml.safe_dump({**cfg, "web": {"listen": f"127.0.0.1:{port}"}}))
    graph.deliver(MAILBOX, "VLeads", mail(1))
    with Running(home) as gw:
        assert wait_until(lambda: graph.categories(MAILBOX, "VLeads") == TAGGED, 60), health(gw)
        assert wait_until(lambda: health(gw).get(ghost, {}).get("state") == "error", 60)
        assert wait_until(lambda: health(gw)[MAILBOX]["state"] == "watching", 60), health(gw)  # its turn done
        doc = gw.sources[0].status()
        gw.write_status()
        assert wait_for(lambda: f"{ghost}: Graph: mailbox {ghost} not found" in page(port), 60), page(port)
        assert "online: mailboxes 1 error, 1 watching" in page(port)
    assert f"mailbox {ghost} not found" in doc["mailbox_health"][ghost]["last_error"]
    assert doc["mailbox_health"][MAILBOX]["items"] == 1
    assert doc["last_error"].startswith(f"1 of 2 mailboxes failing; {ghost}: ")
    assert doc["mailboxes"] == [ghost, MAILBOX]  # the old key keeps its type: a list
    assert len(emails(home)) == 1
    shown = home.cli("status", check=True).stdout
    assert "online: mailboxes 1 error, 1 watching" in shown and f"{ghost}: Graph: mailbox {ghost} not found" in shown, shown
    stored = status_doc(home.config())["sources"][0]["mailbox_health"]
    assert stored[ghost]["state"] == "error" and stored[MAILBOX]["state"] == "watching"


def test_ews_mailboxes_file_edited_while_running_and_a_denied_mailbox_beside_them(ews, tmp_path):
    for mb in (ANNA, BOB, CARL):
        ews.add_mailbox(mb)
        ews.allowed.add(mb)
    denied = "denied@example.com"  # exists, but the service account may not impersonate it
    ews.add_mailbox(denied)
    src = ews_source(ews, mailboxes=[], mailboxes_file="mailboxes.txt", poll_interval=0.3, directory_refresh=0.3)
    home = home_with(tmp_path, "h", src)
    roster = home.root / "mailboxes.txt"
    edit(roster, f"{ANNA}\n{BOB}\n{denied}\n")
    with Running(home) as gw:
        ews.deliver(ANNA, "VLeads", mail(1))
        ews.deliver(BOB, "VLeads", mail(2))
        for mb in (ANNA, BOB):
            assert wait_until(lambda mb=mb: ews.categories(mb, "VLeads") == TAGGED, 60), health(gw)
        assert wait_until(lambda: health(gw).get(denied, {}).get("state") == "error", 60), health(gw)
        assert "impersonate" in health(gw)[denied]["last_error"]

        edit(roster, f"{ANNA}\n{CARL}\n")
        ews.deliver(CARL, "VLeads", mail(3))
        assert wait_until(lambda: ews.categories(CARL, "VLeads") == TAGGED, 60), health(gw)
        assert wait_until(lambda: sorted(health(gw)) == [ANNA, CARL], 60), health(gw)
        ews.deliver(BOB, "VLeads", mail(4))
        seen = turns_seen(ews, ANNA)
        assert wait_until(lambda: turns_seen(ews, ANNA) >= seen + 8, 60)
        assert sorted(ews.categories(BOB, "VLeads")) == [[], ["CRM sync", "Synced"]]
        assert gw.sources[0].status()["last_error"] == ""
    assert len(emails(home)) == 3


def test_graph_skips_a_mailbox_this_gateway_does_not_hold(graph, tls, tmp_path):
    for mb in (ANNA, BOB):
        graph.mailboxes.add(mb)
    home = home_with(tmp_path, "h", graph_source(graph, tls[0], mailboxes=[ANNA, BOB]))
    graph.deliver(ANNA, "VLeads", mail(1))
    graph.deliver(BOB, "VLeads", mail(2))
    running = Running(home)
    running.gw.intake.holds = lambda source, account: account != BOB  # another gateway holds bob's mailbox
    with running as gw:
        assert wait_until(lambda: graph.categories(ANNA, "VLeads") == TAGGED, 60), health(gw)
        seen = turns_seen(graph, ANNA)
        assert wait_until(lambda: turns_seen(graph, ANNA) >= seen + 8, 60)
        assert health(gw)[BOB]["state"] == "elsewhere"
    assert turns_seen(graph, BOB) == 0 and graph.categories(BOB, "VLeads") == [[]]
    assert len(emails(home)) == 1


def test_ews_streams_follow_the_mailboxes_file(ews, tmp_path):
    for mb in (ANNA, BOB, CARL):
        ews.add_mailbox(mb)
        ews.allowed.add(mb)
    src = ews_source(ews, mailboxes=[], mailboxes_file="mailboxes.txt", streaming=True, poll_interval=30, directory_refresh=0.3)
    home = home_with(tmp_path, "h", src)
    roster = home.root / "mailboxes.txt"
    edit(roster, f"{ANNA}\n{BOB}\n")
    with Running(home) as gw:
        assert wait_until(lambda: gw.sources[0].status()["streams"] == [ANNA, BOB], 60), gw.sources[0].status()
        edit(roster, f"{ANNA}\n{CARL}\n")
        assert wait_until(lambda: gw.sources[0].status()["streams"] == [ANNA, CARL], 60), gw.sources[0].status()["streams"]
        ews.deliver(CARL, "VLeads", mail(1))  # pushed on carl's new stream (the poll is 300 s away)
        assert wait_until(lambda: ews.categories(CARL, "VLeads") == TAGGED, 60), health(gw)
        assert sorted(health(gw)) == [ANNA, CARL] and gw.sources[0].status()["mode"] == "push"
