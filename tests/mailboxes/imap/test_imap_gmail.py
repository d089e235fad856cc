"""IMAP source on Gmail: tags are written back as Gmail labels (X-GM-LABELS), not keywords.

No Gmail here: `GmailDouble` (tests/mailboxes/imap/gmail_double.py) sits in front of the private Dovecot,
announces X-GM-EXT-1 and keeps the labels itself; flags and keywords are read from Dovecot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import apply_tag_batch, five_in_vleads_two_dragged, message_id_of, wait_for
from tests.mailboxes.imap.gmail_double import GmailDouble


@pytest.fixture
def gmail(dovecot) -> Iterator[GmailDouble]:
    double = GmailDouble(dovecot)
    try:
        yield double
    finally:
        double.close()


def test_the_double_speaks_gmails_label_wire_format(dovecot, gmail):
    """What the gateway relies on: the capability, one FETCH per message that exists (none
    for a UID that does not, still OK), labels with spaces and non-ASCII kept as they are."""
    raw = make_mail(subject="Labels")
    uid = dovecot.append("VLeads", raw)
    c = IMAPClient(gmail.host, gmail.port, ssl=False, timeout=30)
    try:
        c.login("alice", dovecot.users["alice"])
        assert b"X-GM-EXT-1" in c.capabilities()
        c.select_folder("VLeads")
        assert c.add_gmail_labels([uid, uid + 50], ["CRM sync", "Grüße"]) == {uid: ["CRM sync", "Grüße"]}
        assert c.remove_gmail_labels([uid + 50], ["CRM sync"]) is None  # OK, but no FETCH: no such UID
        assert c.remove_gmail_labels([uid], ["Grüße"]) == {uid: ["CRM sync"]}
        assert c.get_gmail_labels([uid]) == {uid: ["CRM sync"]}
    finally:
        c.logout()
    assert gmail.labels("VLeads", uid) == {"CRM sync"}
    assert gmail.labels("VLeads", uid + 50) == set()
    assert dovecot.flags("VLeads")[message_id_of(raw)] - {"\\Recent"} == set()  # labels are no keywords (nor \\Seen)


def test_gmail_mail_reaches_the_crm_labelled_without_keywords_and_unread(dovecot, gmail, imap_home):
    home = imap_home(source={"port": gmail.port})
    home.start()
    home.wait_idle("VLeads")
    raw = make_mail(sender="Bob Ray <bob@x.org>", subject="Quote please")
    uid = dovecot.append("VLeads", raw)
    assert uid > 0

    # The labels the rule's `tag: [CRM sync, Synced]` names, with their display names (spaces
    # kept: a keyword would be `CRM_sync`).
    wait_for(lambda: gmail.labels("VLeads", uid) == {"CRM sync", "Synced"}, what="Gmail labels on the mail")
    wait_for(lambda: home.states() == {"done": 1}, what="the mail done (not done_untagged)")
    assert home.location_tags("VLeads") == [["CRM sync", "Synced"]]

    dump = home.dump()
    assert [e["subject"] for e in dump["emails"]] == ["Quote please"]
    assert [e for lead in dump["leads"] for e in lead["emails"]] == ["bob@x.org"]

    flags = dovecot.flags("VLeads")[message_id_of(raw)]  # straight from Dovecot, not through the double
    assert "\\Seen" not in flags, flags
    assert {f for f in flags if not f.startswith("\\")} == set(), f"keywords were set: {flags}"

    st = home.source_status()
    assert st["keywords"] == "gmail labels"
    assert "X-GM-EXT-1" in st["capabilities"]
    assert home.gw.ledger.all_status()["source:mail"]["keywords"] == "gmail labels"  # what `status` shows


def test_batch_writeback_on_gmail_one_label_store_moved_copies_found_or_gone(dovecot, gmail, imap_home):
    """The write-back alone (no running gateway): one +X-GM-LABELS for the batch, "CRM error"
    taken off with -X-GM-LABELS, a copy dragged to another watched folder labelled there (the
    STORE at its old UID answered OK without a FETCH), one dragged out of them all reported gone."""
    raws, uids = five_in_vleads_two_dragged(dovecot, "G")
    c = IMAPClient(gmail.host, gmail.port, ssl=False, timeout=30)
    try:  # an earlier failure left its label on the first mail
        c.login("alice", dovecot.users["alice"])
        uidvalidity = int(c.select_folder("VLeads")[b"UIDVALIDITY"])
        c.add_gmail_labels([uids[0]], ["CRM error"])
    finally:
        c.logout()
    assert gmail.labels("VLeads", uids[0]) == {"CRM error"}

    requests, applied, stores, on_gmail = apply_tag_batch(
        imap_home(source={"port": gmail.port}), uidvalidity, uids, raws, "add_gmail_labels"
    )
    assert on_gmail

    assert stores[0] == uids  # one STORE for all five UIDs first
    assert all(a.tags == {"CRM sync", "Synced"} for a in applied)
    assert [a.ref for a in applied[:3]] == [r.ref for r in requests[:3]]
    for uid in uids[:3]:
        assert gmail.labels("VLeads", uid) == {"CRM sync", "Synced"}  # "CRM error" taken off the first
    moved = applied[3].ref
    assert moved is not None and moved.folder == "VContacts"
    assert gmail.labels("VContacts", int(moved.item_key)) == {"CRM sync", "Synced"}
    assert applied[4].ref is None and "no message with Message-ID" in applied[4].note
    assert gmail.labels("Archive", 1) == set()
    for folder in ("VLeads", "VContacts", "Archive"):  # Dovecot itself got no keywords, no \Seen
        assert all(f - {"\\Recent"} == set() for f in dovecot.flags(folder).values()), folder


def test_check_refuses_a_tag_named_like_a_watched_folder_on_gmail_only(dovecot, gmail, imap_home):
    """RULES.md: on Gmail labels are folders, so the shipped rules' tag "CRM sync" would file
    VLeads mail into the watched folder "CRM sync" again. `check` says where; the same rules
    pass on a server with keywords, and on Gmail when that folder is not watched."""
    on_gmail = imap_home(source={"port": gmail.port})
    res = on_gmail.cli("check")
    assert res.returncode == 1, res.stdout + res.stderr
    assert re.search(
        r"rules/\S+\.yaml:\d+:\d+: tag 'CRM sync' is the watched folder 'CRM sync'.*"
        r"\(on mail, a Gmail account\)",
        res.stderr.replace("\n", " "),
    ), res.stderr
    assert imap_home().cli("check").returncode == 0  # Dovecot itself: keywords, no clash
    not_watched = imap_home(source={"port": gmail.port}, folders=["VLeads", "VContacts", "VAccounts"])
    res = not_watched.cli("check")
    assert res.returncode == 0, res.stderr
