"""`reconcile` on a real Dovecot: after a normal sync, a mail whose ledger row was deleted by
hand, a keyword removed by hand, a mail delivered while the gateway was down and an email
deleted from the CRM are each reported under their kind (JSON, text, exit code 1); `--fix`
leaves the folder reconciled with every copy tagged and one CRM email per mail; a second
`--fix` does nothing."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import message_id_of


def _delete_ledger_row(home: Any, message_id: str) -> None:
    """A person deletes a mail's rows from the ledger with sqlite3."""
    db = sqlite3.connect(home.root / "var" / "gateway.db")
    with db:
        (pk,) = db.execute("SELECT id FROM messages WHERE message_id = ?", (message_id,)).fetchone()
        for table in ("journal", "events", "message_addresses"):
            db.execute(f"DELETE FROM {table} WHERE message_pk = ?", (pk,))
        db.execute("DELETE FROM locations WHERE message_pk = ?", (pk,))
        db.execute("DELETE FROM messages WHERE id = ?", (pk,))
    db.close()


def _delete_crm_email(home: Any, message_id: str) -> None:
    db = sqlite3.connect(home.root / "var" / "crm.db")
    with db:
        (eid,) = db.execute("SELECT id FROM emails WHERE message_id = ?", (message_id,)).fetchone()
        db.execute("DELETE FROM email_links WHERE email_id = ?", (eid,))
        db.execute("DELETE FROM email_attachments WHERE email_id = ?", (eid,))
        db.execute("DELETE FROM emails WHERE id = ?", (eid,))
    db.close()


def _unflag(dovecot: Any, folder: str, message_id: str, keyword: str) -> None:
    with dovecot.client() as c:
        c.select_folder(folder)
        uids = c.search(["HEADER", "Message-ID", message_id])
        c.remove_flags(uids, [keyword])


def _uid(dovecot: Any, folder: str, message_id: str) -> int:
    with dovecot.client() as c:
        c.select_folder(folder, readonly=True)
        (uid,) = c.search(["HEADER", "Message-ID", message_id])
        return int(uid)


def _keys(doc: dict[str, Any], kind: str) -> list[str]:
    return sorted(f["key"] for folder in doc["folders"] for f in folder["findings"][kind])


def test_reconcile_finds_what_was_lost_and_fix_brings_it_back(imap_home: Any, dovecot: Any) -> None:
    home = imap_home(folders=["VLeads"])
    raws = [make_mail(sender=f"Rec {i} <rec{i}@firm{i}.example>", subject=f"reconcile {i}") for i in range(4)]
    mids = [message_id_of(r) for r in raws]
    for raw in raws:
        dovecot.append("VLeads", raw)
    home.run_once()
    assert all(home.tagged("VLeads", m, "CRM_sync", "Synced") for m in mids)
    clean = home.cli("reconcile", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["reconciled"] is True

    # (a) a ledger row deleted by hand, (b) a keyword removed by hand, (c) a mail delivered
    # while the gateway was down, (d) an email deleted from the CRM
    _delete_ledger_row(home, mids[0])
    _unflag(dovecot, "VLeads", mids[1], "CRM_sync")
    late = make_mail(sender="Late <late@later.example>", subject="arrived while down")
    dovecot.append("VLeads", late)
    _delete_crm_email(home, mids[2])

    found = home.cli("reconcile", "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    doc = json.loads(found.stdout)
    assert doc["reconciled"] is False
    (folder,) = doc["folders"]
    assert (folder["source"], folder["account"], folder["folder"], folder["copies"]) == ("mail", "alice", "VLeads", 5)
    assert _keys(doc, "unknown") == sorted(
        [str(_uid(dovecot, "VLeads", mids[0])), str(_uid(dovecot, "VLeads", message_id_of(late)))]
    )
    assert [f["message_id"] for f in folder["findings"]["untagged"]] == [mids[1]]
    assert "CRM_sync" in folder["findings"]["untagged"][0]["detail"]
    assert [f["message_id"] for f in folder["findings"]["missing_in_crm"]] == [mids[2]]
    assert folder["findings"]["not_done"] == [] and folder["findings"]["duplicate_in_crm"] == []
    assert doc["counts"] == {"unknown": 2, "not_done": 0, "missing_in_crm": 1, "untagged": 1, "duplicate_in_crm": 0}

    text = home.cli("reconcile")
    assert text.returncode == 1
    assert "in the mailbox, unknown to the ledger (unknown): 2" in text.stdout
    assert "done, not tagged in the mailbox (untagged): 1" in text.stdout
    assert "done, missing in the CRM (missing_in_crm): 1" in text.stdout
    assert mids[1] in text.stdout and message_id_of(late) in text.stdout

    fixed = home.cli("reconcile", "--fix", "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    after = json.loads(fixed.stdout)
    assert after["reconciled"] is True and after["fixed"] == 4

    again = home.cli("reconcile")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reconciled: nothing lost" in again.stdout
    every = [*mids, message_id_of(late)]
    assert all(home.tagged("VLeads", m, "CRM_sync", "Synced") for m in every)
    emails = [e["message_id"] for e in home.emails()]
    assert sorted(emails) == sorted(every)  # one CRM email per mail: nothing duplicated
    states = home.states()
    assert states == {"done": 5}

    second = home.cli("reconcile", "--fix", "--json")
    assert second.returncode == 0
    assert json.loads(second.stdout)["fixed"] == 0
    assert sorted(e["message_id"] for e in home.emails()) == sorted(every)

    # the next normal run takes the late mail for the copy already handled
    home.run_once()
    assert sorted(e["message_id"] for e in home.emails()) == sorted(every)
    assert home.cli("reconcile").returncode == 0


def test_reconcile_lists_every_mailbox_of_a_master_user_entry(imap_home: Any, many_dovecot: Any) -> None:
    """One `imap` entry reaching two users' mailboxes through the master user: each mailbox's
    folder is its own report, and a keyword removed in one of them is found and set again."""
    from tests.mailboxes.imap.fixtures import fleet

    home = imap_home(server=many_dovecot, source=fleet(["u001", "u002"]))
    raws = {u: make_mail(sender=f"Fleet {u} <{u}@fleet{u}.example>", subject=f"for {u}") for u in ("u001", "u002")}
    for u, raw in raws.items():
        many_dovecot.append("VLeads", raw, user=u)
    home.run_once()
    _unflag_as(many_dovecot, "u002", message_id_of(raws["u002"]), "Synced")

    found = home.cli("reconcile", "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    doc = json.loads(found.stdout)
    assert sorted((f["account"], f["folder"], f["copies"]) for f in doc["folders"]) == [
        ("u001", "VLeads", 1),
        ("u002", "VLeads", 1),
    ]
    untagged = {f["account"]: [x["message_id"] for x in f["findings"]["untagged"]] for f in doc["folders"]}
    assert untagged == {"u001": [], "u002": [message_id_of(raws["u002"])]}

    assert home.cli("reconcile", "--fix").returncode == 0
    flags = many_dovecot.flags("VLeads", user="u002")[message_id_of(raws["u002"])]
    assert {"CRM_sync", "Synced"} <= flags
    assert home.cli("reconcile").returncode == 0


def _unflag_as(dovecot: Any, user: str, message_id: str, keyword: str) -> None:
    with dovecot.client(user) as c:
        c.select_folder("VLeads")
        c.remove_flags(c.search(["HEADER", "Message-ID", message_id]), [keyword])
