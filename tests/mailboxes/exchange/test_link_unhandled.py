"""The Outlook add-in's "file this mail here" on a mail the gateway never handled, against the
EWS and Graph doubles (tests/mailboxes/exchange/ews_double.py, graph_double.py: built from
Microsoft's published documents, not Exchange): the mail lies in the Inbox, which the gateway
does not watch. `POST /api/v1/link` by its Message-ID finds it (EWS: FindItem with a
Restriction on message:InternetMessageId; Graph: GET /users/{id}/messages?$filter=
internetMessageId eq '…'), files it on the record without the rules and sets the synced
categories on it; linking again leaves one link; another person, and a Message-ID in no
mailbox, get a 404."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.admin.access import hash_password
from tests.fixtures import Home
from tests.mailboxes.exchange.fixtures import MAILBOX, emails, ews_source, graph_source, mail
from tests.web.fixtures import PASSWORD, make_record, sign_in, web


def _home(tmp_path: Any, source: dict[str, Any]) -> Home:
    hashed = hash_password(PASSWORD)
    users = [
        {"name": "me", "password_hash": hashed, "role": "user", "addresses": [MAILBOX]},
        {"name": "bob", "password_hash": hashed, "role": "user", "addresses": ["bob@example.com"]},
    ]
    root = tmp_path / "h"
    root.mkdir()
    return Home(root, extra={"sources": [source], "web": {"listen": "127.0.0.1:8025", "users": users}})


def _link(client: Any, token: str, record: str, message_id: str) -> Any:
    return client.post("/api/v1/link", json={"record": record, "message_id": message_id}, headers={"X-CSRF-Token": token})


def _file_it(home: Home, message_id: str) -> None:
    rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner=MAILBOX)
    with web(home) as client:
        token = sign_in(client, "me")
        seen = client.get("/api/v1/messages/lookup", params={"message_id": message_id})
        assert seen.status_code == 200, seen.text
        assert (seen.json()["known"], seen.json()["crm_records"]) == (False, [])
        first = _link(client, token, f"contact:{rec}", message_id)
        assert first.status_code == 200, first.text
        assert first.json()["fetched_from"] == f"{home.config().sources[0].name}:{MAILBOX}/Inbox"
        again = _link(client, token, f"contact:{rec}", message_id)
        assert again.status_code == 200, again.text
        nowhere = _link(client, token, f"contact:{rec}", "<nowhere@far.example>")
        assert nowhere.status_code == 404 and "in the mailboxes you own, handled or not" in nowhere.json()["error"]
        client.post("/signout", headers={"X-CSRF-Token": token})
        token = sign_in(client, "bob")
        bobs = make_record(home, "contact", "Bo", "B", "bo@y.example", owner="bob@example.com")
        assert _link(client, token, f"contact:{bobs}", message_id).status_code == 404
    (email,) = emails(home)
    assert email["message_id"] == message_id
    assert email["links"] == [{"kind": "contact", "id": int(rec)}]
    assert home.states() == {"done": 1}


@pytest.mark.slow
def test_ews_finds_a_mail_in_the_inbox_and_files_it(ews: Any, tmp_path: Any) -> None:
    home = _home(tmp_path, ews_source(ews))
    raw = mail(21)
    ews.deliver(MAILBOX, "Inbox", raw)
    _file_it(home, "<m21.buyer21@customer21.example>")
    assert ews.categories(MAILBOX, "Inbox") == [["CRM sync", "Synced"]]
    # found by the server's search (first in the Inbox), once by lookup and once by the link;
    # the second link and the Message-ID found nowhere come after
    assert ews.searched[:2] == ["<m21.buyer21@customer21.example>"] * 2


@pytest.mark.slow
def test_graph_finds_a_mail_in_the_inbox_and_files_it(graph: Any, tls: Any, tmp_path: Any) -> None:
    home = _home(tmp_path, graph_source(graph, tls[0]))
    raw = mail(22)
    graph.deliver(MAILBOX, "Inbox", raw)
    _file_it(home, "<m22.buyer22@customer22.example>")
    assert graph.categories(MAILBOX, "Inbox") == [["CRM sync", "Synced"]]
    assert graph.searched[:2] == ["<m22.buyer22@customer22.example>"] * 2


@pytest.mark.slow
def test_ews_refusing_every_folder_is_said_not_taken_for_a_missing_mail(tmp_path: Any) -> None:
    """The service account may not impersonate the mailbox: every folder's search is refused.
    The person is told the server refused (not "no message ... in the mailboxes you own", which
    would send them looking for a mail that may well be there)."""
    from tests.mailboxes.exchange.ews_double import EwsDouble

    ews = EwsDouble(mailboxes=[MAILBOX], impersonation_for=[]).start()
    try:
        home = _home(tmp_path, ews_source(ews))
        rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner=MAILBOX)
        with web(home) as client:
            token = sign_in(client, "me")
            res = _link(client, token, f"contact:{rec}", "<m23.buyer23@customer23.example>")
            assert res.status_code != 404, res.text
            assert res.status_code >= 400 and "impersonate" in res.json()["error"]
    finally:
        ews.stop()
    assert home.states() == {}
