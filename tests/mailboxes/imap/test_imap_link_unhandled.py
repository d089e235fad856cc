"""The Outlook add-in's "file this mail here" on a mail the gateway never handled, on a real
Dovecot: the mail lies in INBOX, which the gateway does not watch. `POST /api/v1/link` by its
Message-ID finds it there (UID SEARCH HEADER Message-ID), files it on the record without the
rules, tags the copy as synced mail; linking again leaves one link. A person who does not own
the mailbox, and a Message-ID in no mailbox, get a 404 in words."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.admin.access import hash_password
from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import message_id_of
from tests.web.fixtures import PASSWORD, make_record, sign_in, web

PEOPLE = [("me", ["me@example.com"]), ("bob", ["bob@example.com"])]


def _home(imap_home: Any) -> Any:
    hashed = hash_password(PASSWORD)
    users = [{"name": n, "password_hash": hashed, "role": "user", "addresses": a} for n, a in PEOPLE]
    return imap_home(folders=["VLeads"], extra={"web": {"listen": "127.0.0.1:8025", "users": users}})


def _post_link(client: Any, token: str, record: str, message_id: str) -> Any:
    return client.post("/api/v1/link", json={"record": record, "message_id": message_id}, headers={"X-CSRF-Token": token})


def test_a_mail_in_the_inbox_is_fetched_filed_and_tagged(imap_home: Any, dovecot: Any) -> None:
    home = _home(imap_home)
    raw = make_mail(sender="Ann Lee <ann@far.example>", subject="still in the inbox")
    mid = message_id_of(raw)
    dovecot.append("INBOX", raw)
    home.run_once()  # the watched folder is empty; INBOX is nobody's rule
    assert home.states() == {}
    rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="me@example.com")
    with web(home) as client:
        token = sign_in(client, "me")
        seen = client.get("/api/v1/messages/lookup", params={"message_id": mid})
        assert seen.status_code == 200, seen.text
        assert (seen.json()["known"], seen.json()["mailbox"]) == (False, "mail:alice/INBOX")
        for _ in range(2):
            res = _post_link(client, token, f"contact:{rec}", mid)
            assert res.status_code == 200, res.text
        nowhere = _post_link(client, token, f"contact:{rec}", "<nowhere@far.example>")
        assert nowhere.status_code == 404
        assert nowhere.json()["error"] == (
            "no message with Message-ID <nowhere@far.example> in the mailboxes you own, handled or not"
        )
        client.post("/signout", headers={"X-CSRF-Token": token})
        token = sign_in(client, "bob")
        bobs = make_record(home, "contact", "Bo", "B", "bo@y.example", owner="bob@example.com")
        refused = _post_link(client, token, f"contact:{bobs}", mid)
        assert refused.status_code == 404, refused.text
        assert client.get("/api/v1/messages/lookup", params={"message_id": mid}).status_code == 404
    (email,) = home.emails()
    assert email["message_id"] == mid
    assert email["links"] == [{"kind": "contact", "id": int(rec)}]
    assert home.states() == {"done": 1}
    assert home.tagged("INBOX", mid, "CRM_sync", "Synced")
    assert dovecot.count("INBOX") == 1  # fetched and tagged, never moved or copied
    led = home.ledger()
    try:
        (row,) = led.find_messages(mid)
        journal = led.journal(row.id)
    finally:
        led.close()
    assert any(step.endswith("attach") for step in journal), journal


def test_a_master_user_entry_searches_only_the_askers_mailbox(tmp_path: Any) -> None:
    """One `imap` entry reaching two mailboxes through a master user: the mail in u1's INBOX is
    found by logging in as u1 and filed for u1's owner; u2's owner cannot reach it."""
    from tests.mailboxes.imap.dovecot import Dovecot, available
    from tests.mailboxes.imap.fixtures import MASTER, ImapHome, fleet

    if not available():
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; `make test` installs it)")
    server = Dovecot({"u1": "pw1", "u2": "pw2"}, master=MASTER)
    hashed = hash_password(PASSWORD)
    users = [{"name": n, "password_hash": hashed, "role": "user", "addresses": [n]} for n in ("u1", "u2")]
    home = ImapHome(tmp_path, server, source=fleet(["u1", "u2"]), extra={"web": {"listen": "127.0.0.1:8025", "users": users}})
    try:
        raw = make_mail(sender="Ann Lee <ann@far.example>", subject="to u1 only")
        mid = message_id_of(raw)
        server.append("INBOX", raw, user="u1")
        rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="u1")
        with web(home) as client:
            token = sign_in(client, "u2")
            theirs = make_record(home, "contact", "Bo", "B", "bo@y.example", owner="u2")
            refused = _post_link(client, token, f"contact:{theirs}", mid)
            assert refused.status_code == 404 and "in the mailboxes you own, handled or not" in refused.json()["error"]
            client.post("/signout", headers={"X-CSRF-Token": token})
            token = sign_in(client, "u1")
            res = _post_link(client, token, f"contact:{rec}", mid)
            assert res.status_code == 200, res.text
            assert res.json()["fetched_from"] == "mail:u1/INBOX"
        assert [e["message_id"] for e in home.emails()] == [mid]
        assert "CRM_sync" in server.flags("INBOX", user="u1")[mid]
    finally:
        server.close()


def test_a_mail_bigger_than_max_message_size_is_filed_from_its_headers(imap_home: Any, dovecot: Any) -> None:
    """As the watching source hands such a mail over: its headers and its size, not its bytes."""
    hashed = hash_password(PASSWORD)
    users = [{"name": "me", "password_hash": hashed, "role": "user", "addresses": ["me@example.com"]}]
    home = imap_home(folders=["VLeads"], extra={"max_message_size": "4KB", "web": {"listen": "127.0.0.1:8025", "users": users}})
    raw = make_mail(sender="Ann Lee <ann@far.example>", subject="a big one", body="x" * 20_000)
    mid = message_id_of(raw)
    dovecot.append("INBOX", raw)
    rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="me@example.com")
    with web(home) as client:
        token = sign_in(client, "me")
        res = _post_link(client, token, f"contact:{rec}", mid)
        assert res.status_code == 200, res.text
    (email,) = home.emails()
    assert (email["message_id"], email["links"]) == (mid, [{"kind": "contact", "id": int(rec)}])
    led = home.ledger()
    try:
        (row,) = led.find_messages(mid)
        assert row.size >= 20_000 and row.state == "done"
        (copy,) = led.locations_of(row.id)
        assert copy.declared_size is not None and copy.declared_size >= 20_000  # only its headers were fetched
    finally:
        led.close()
    assert home.tagged("INBOX", mid, "CRM_sync", "Synced")


def test_a_message_id_carrying_an_imap_command_is_refused_before_any_search(imap_home: Any, dovecot: Any) -> None:
    """A Message-ID with CR LF in it would end the SEARCH command and run the next line in the
    gateway's IMAP session (here: delete a folder): it is refused in words (400), and the
    folder is still there. A non-ASCII one is refused the same way, not a 500."""
    home = _home(imap_home)
    with dovecot.client() as c:
        c.create_folder("Archive")
    rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="me@example.com")
    hostile = "<x@y>\r\nZ1 DELETE Archive\r\nZ2 NOOP"
    with web(home) as client:
        token = sign_in(client, "me")
        for mid in (hostile, "<jé@y.example>"):
            seen = client.get("/api/v1/messages/lookup", params={"message_id": mid})
            assert seen.status_code == 400, seen.text
            assert "not a Message-ID" in seen.json()["error"]
            res = _post_link(client, token, f"contact:{rec}", mid)
            assert res.status_code == 400 and "not a Message-ID" in res.json()["error"]
    with dovecot.client() as c:
        assert c.folder_exists("Archive")
    assert home.states() == {}
