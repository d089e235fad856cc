"""Filing a mail the gateway never handled, found in the person's mailbox by its Message-ID
(`POST /api/v1/link`, `GET /api/v1/messages/lookup`), on Maildir mailboxes: the mail lies in
the inbox, which no rule watches. The same on a real IMAP server: tests/mailboxes/imap/
test_imap_link_unhandled.py; on the Exchange and Graph doubles: tests/mailboxes/exchange/."""

from __future__ import annotations

from tests.mail import make_mail
from tests.web.fixtures import make_record, sign_in, web, web_home


def _links(home, kind: str, rid: str) -> list[str]:
    dump = home.dump()
    return [e["message_id"] for e in dump["emails"] for link in e["links"] if link == {"kind": kind, "id": int(rid)}]


def _inbox(home, raw: bytes, mailbox: str = "var/mail") -> None:
    for sub in ("new", "cur", "tmp"):
        (home.root / mailbox / sub).mkdir(parents=True, exist_ok=True)
    (home.root / mailbox / "new" / "1700000001.inbox.host").write_bytes(raw)


def test_a_mail_in_the_inbox_is_looked_up_filed_and_linked_once(tmp_path):
    home = web_home(tmp_path)
    _inbox(home, make_mail(sender="Ann Lee <ann@far.example>", subject="quote", message_id="<in@far.example>"))
    rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="me@example.com")
    with web(home) as client:
        token = sign_in(client, "me")
        seen = client.get("/api/v1/messages/lookup", params={"message_id": "<in@far.example>"})
        assert seen.status_code == 200, seen.text
        doc = seen.json()
        assert (doc["known"], doc["can_link"], doc["crm_records"], doc["subject"]) == (False, True, [], "quote")
        assert doc["mailbox"] == "local:me@example.com/INBOX"
        answers = []
        for _ in range(2):
            res = client.post(
                "/api/v1/link",
                json={"record": f"contact:{rec}", "message_id": "<in@far.example>"},
                headers={"X-CSRF-Token": token},
            )
            assert res.status_code == 200, res.text
            assert res.json()["record"] == f"contact:{rec}"
            answers.append(res.json())
        assert answers[0]["fetched_from"] == "local:me@example.com/INBOX" and "fetched_from" not in answers[1]
        assert answers[0]["email_id"] == answers[1]["email_id"] == str(home.dump()["emails"][0]["id"])
        after = client.get("/api/v1/messages/lookup", params={"message_id": "<in@far.example>"}).json()
        assert after["known"] is True and after["state"] == "done"
        assert [r["record"] for r in after["crm_records"]] == [f"contact:{rec}"]
        # bob owns the other mailbox only: the mail is not his to see or file
        client.post("/signout", headers={"X-CSRF-Token": token})
        token = sign_in(client, "bob")
        bobs = make_record(home, "contact", "Bo", "B", "bo@y.example", owner="bob@example.com")
        res = client.post(
            "/api/v1/link", json={"record": f"contact:{bobs}", "message_id": "<in@far.example>"}, headers={"X-CSRF-Token": token}
        )
        assert res.status_code == 404
        assert "no message with Message-ID <in@far.example>" in res.json()["error"]
    assert _links(home, "contact", rec) == ["<in@far.example>"]
    assert _links(home, "contact", bobs) == []
    assert home.states() == {"done": 1}
    led = home.ledger()
    try:
        (row,) = led.find_messages("<in@far.example>")
        history = [detail for _at, _event, detail in led.events(row.id)]
        journal = led.journal(row.id)
    finally:
        led.close()
    assert any(k.endswith("attach") for k in journal), journal
    assert f"resolved by a person: contact:{rec}" in history, history


def test_a_message_id_in_no_mailbox_answers_404_in_words(tmp_path):
    home = web_home(tmp_path)
    rec = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="me@example.com")
    with web(home) as client:
        token = sign_in(client, "me")
        look = client.get("/api/v1/messages/lookup", params={"message_id": "<none@x.example>"})
        assert look.status_code == 404
        res = client.post(
            "/api/v1/link", json={"record": f"contact:{rec}", "message_id": "<none@x.example>"}, headers={"X-CSRF-Token": token}
        )
        assert res.status_code == 404
        assert res.json()["error"] == ("no message with Message-ID <none@x.example> in the mailboxes you own, handled or not")
    assert home.states() == {}
