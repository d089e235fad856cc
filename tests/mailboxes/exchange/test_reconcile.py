"""`reconcile` on the `ews` and `graph` sources, against the EWS and Graph doubles: after a
sync, a mail delivered while the gateway was down, a category removed by hand and a ledger
row deleted are each reported; `--fix` fetches the unknown copies again through the
write-back, sets the categories again, and leaves one CRM email per mail; a second `--fix`
finds and writes nothing."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.fixtures import Home
from tests.mailboxes.exchange.ews_double import EwsDouble
from tests.mailboxes.exchange.fixtures import MAILBOX, ews_source, graph_source, home_with, mail, moving_leads_to

OTHER = "support@example.com"  # a second mailbox the EWS service account impersonates
TAGS = ["CRM sync", "Synced"]  # what the shipped rules write back on a VLeads mail


def _mid(n: int) -> str:
    return f"<m{n}.buyer{n}@customer{n}.example>"


def _forget(home: Home, message_id: str) -> None:
    """Delete a message's rows from the ledger, as a restore of an older backup would."""
    db = sqlite3.connect(home.root / "var" / "gateway.db")
    with db:
        ((pk,),) = db.execute("SELECT id FROM messages WHERE message_id = ?", (message_id,)).fetchall()
        for t in ("journal", "events", "message_addresses", "locations"):
            db.execute(f"DELETE FROM {t} WHERE message_pk = ?", (pk,))
        db.execute("DELETE FROM messages WHERE id = ?", (pk,))
    db.close()


def _findings(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """kind → [(mailbox, Message-ID)] over the folders."""
    out: dict[str, list[tuple[str, str]]] = {}
    for folder in doc["folders"]:
        for kind, found in folder["findings"].items():
            out.setdefault(kind, []).extend((folder["account"], f["message_id"]) for f in found)
    return {k: sorted(v) for k, v in out.items() if v}


def _emails(home: Home) -> list[str]:
    return sorted(e["message_id"] for e in home.dump()["emails"])


def _reconcile(home: Home, *args: str) -> tuple[int, dict[str, Any]]:
    res = home.cli("reconcile", "--json", *args)
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def _check(home: Home, late: tuple[str, int], untagged: tuple[str, int], forgotten: tuple[str, int], writes: Any) -> None:
    """The three findings, then `--fix` twice: what the caller set up before calling."""
    code, doc = _reconcile(home)
    assert code == 1
    assert _findings(doc) == {
        "unknown": sorted([(late[0], _mid(late[1])), (forgotten[0], _mid(forgotten[1]))]),
        "untagged": [(untagged[0], _mid(untagged[1]))],
    }
    (lacks,) = [f for r in doc["folders"] for f in r["findings"]["untagged"]]
    assert lacks["detail"] == "lacks CRM sync"

    code, doc = _reconcile(home, "--fix")
    assert code == 0, doc
    assert doc["fixed"] == 3 and doc["reconciled"] is True
    assert home.states() == {"done": 5}
    assert _emails(home) == sorted(_mid(n) for n in range(5))  # the forgotten mail's email not stored twice

    before = writes()
    code, doc = _reconcile(home, "--fix")
    assert code == 0 and doc["fixed"] == 0
    assert writes() == before  # nothing fetched or written again
    assert _emails(home) == sorted(_mid(n) for n in range(5))


def test_ews_reconcile_finds_and_fixes_per_mailbox(tmp_path: Any) -> None:
    ews = EwsDouble(mailboxes=[MAILBOX, OTHER]).start()
    try:
        home = home_with(tmp_path, "h", ews_source(ews, mailboxes=[MAILBOX, OTHER]))
        ids = [ews.deliver(MAILBOX if n < 2 else OTHER, "VLeads", mail(n)) for n in range(4)]  # FindItem pages of 2
        assert home.run_once().get("done") == 4
        assert ews.categories(MAILBOX, "VLeads") == [TAGS] * 2 and ews.categories(OTHER, "VLeads") == [TAGS] * 2
        code, doc = _reconcile(home)
        assert code == 0, doc
        assert {(f["account"], f["folder"]): f["copies"] for f in doc["folders"] if f["copies"]} == {
            (MAILBOX, "VLeads"): 2,
            (OTHER, "VLeads"): 2,
        }
        assert ews.count("FindItem") >= 2 * 4  # one query per mailbox and folder, paged
        assert ews.mime_reads == 4  # listing reads no item

        ews.deliver(OTHER, "VLeads", mail(4))  # while the gateway is down
        with ews.lock:
            ews.items[ids[1]].categories = ["Synced"]  # a user cleared one category by hand
        _forget(home, _mid(2))

        def writes() -> tuple[int, int]:
            return ews.mime_reads, ews.count("UpdateItem")

        _check(home, (OTHER, 4), (MAILBOX, 1), (OTHER, 2), writes)
        assert [sorted(c) for c in ews.categories(MAILBOX, "VLeads")] == [TAGS] * 2  # "CRM sync" added after "Synced"
        assert ews.categories(OTHER, "VLeads") == [TAGS] * 3
        later = home.cli("reconcile", "--since", "2999-01-01", "--json")  # by DateTimeReceived: none
        assert later.returncode == 0 and all(f["copies"] == 0 for f in json.loads(later.stdout)["folders"])
    finally:
        ews.stop()


def test_graph_reconcile_finds_and_fixes(graph: Any, tls: tuple[str, str, str], tmp_path: Any) -> None:
    home = home_with(tmp_path, "h", graph_source(graph, tls[0]))
    ids = [graph.deliver(MAILBOX, "VLeads", mail(n)) for n in range(4)]  # list pages of 2: @odata.nextLink
    assert home.run_once().get("done") == 4
    assert graph.categories(MAILBOX, "VLeads") == [TAGS] * 4
    code, doc = _reconcile(home)
    assert code == 0, doc
    (vleads,) = [f for f in doc["folders"] if f["folder"] == "VLeads"]
    assert vleads["copies"] == 4
    assert graph.mime_reads == 4  # listing reads no message

    graph.deliver(MAILBOX, "VLeads", mail(4))  # while the gateway is down
    with graph.lock:
        graph.messages[ids[1]].categories = ["Synced"]  # a user cleared one category by hand
    _forget(home, _mid(2))

    def writes() -> tuple[int, int]:
        return graph.mime_reads, graph.count("PATCH", "/messages/")

    _check(home, (MAILBOX, 4), (MAILBOX, 1), (MAILBOX, 2), writes)
    assert [sorted(c) for c in graph.categories(MAILBOX, "VLeads")] == [TAGS] * 5
    later = home.cli("reconcile", "--since", "2999-01-01", "--json")  # $filter=receivedDateTime ge …: none
    assert later.returncode == 0 and all(f["copies"] == 0 for f in json.loads(later.stdout)["folders"])


def test_copies_moved_by_the_rules_are_matched_at_their_new_place(graph: Any, tls: tuple[str, str, str], tmp_path: Any) -> None:
    """EWS gives a moved item a new id, Graph keeps its immutable id: either way the ledger's
    copy is where the listing finds it, so a move is no finding, and a category cleared there is."""
    ews = EwsDouble(mailboxes=[MAILBOX]).start()
    try:
        homes = [
            (home_with(tmp_path, "e", ews_source(ews)), ews),
            (home_with(tmp_path, "g", graph_source(graph, tls[0])), graph),
        ]
        for home, double in homes:
            moving_leads_to(home, "CRM sync")
            double.deliver(MAILBOX, "VLeads", mail(1))
            assert home.run_once().get("done") == 1
            assert double.categories(MAILBOX, "VLeads") == [] and double.categories(MAILBOX, "CRM sync") == [TAGS]
            code, doc = _reconcile(home)
            assert code == 0, doc
            assert {f["folder"]: f["copies"] for f in doc["folders"]}["CRM sync"] == 1
            with double.lock:
                (moved,) = [m for m in (ews.items if double is ews else graph.messages).values() if m.categories]
                moved.categories = ["Synced"]
            code, doc = _reconcile(home, "--folder", "CRM sync")
            assert code == 1 and _findings(doc) == {"untagged": [(MAILBOX, _mid(1))]}
    finally:
        ews.stop()


def test_a_mailbox_without_the_folder_is_a_note_and_the_others_are_listed(
    graph: Any, tls: tuple[str, str, str], tmp_path: Any
) -> None:
    graph.mailboxes.add(OTHER)  # on the roster, none of the watched folders made there
    home = home_with(tmp_path, "h", graph_source(graph, tls[0], mailboxes=[MAILBOX, OTHER], create_folders=False))
    graph.deliver(MAILBOX, "VLeads", mail(1))
    res = home.cli("reconcile", "--folder", "VLeads")
    assert res.returncode == 1, res.stdout + res.stderr  # the mail in MAILBOX was never synced
    doc = json.loads(home.cli("reconcile", "--folder", "VLeads", "--json").stdout)
    by_box = {f["account"]: f for f in doc["folders"]}
    assert by_box[MAILBOX]["copies"] == 1 and _findings(doc) == {"unknown": [(MAILBOX, _mid(1))]}
    assert by_box[OTHER]["copies"] == 0 and "folder 'VLeads' is missing in support@example.com" in by_box[OTHER]["note"]
