"""The vtiger folders (rules/folders.yaml) end to end: Maildir in, embedded CRM out."""

from __future__ import annotations

from tests.mail import make_mail

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
CSV = b"name,amount\nwidgets,12\n"


def test_unknown_sender_in_vleads_becomes_a_lead_with_the_mail_and_attachments(home):
    raw = make_mail(
        sender='"Bob Ray" <bob@x.org>',
        subject="Quote please",
        attachments=[("quote.pdf", "application/pdf", PDF), ("items.csv", "text/csv", CSV)],
    )
    home.drop("VLeads", raw)
    summary = home.run_once()
    assert summary == {"done": 1}
    crm = home.dump()
    assert [(l["first_name"], l["last_name"], l["emails"], l["owner"]) for l in crm["leads"]] == [
        ("Bob", "Ray", ["bob@x.org"], "me@example.com")
    ]
    assert crm["contacts"] == [] and crm["accounts"] == []
    (email,) = crm["emails"]
    assert email["subject"] == "Quote please"
    assert email["links"] == [{"kind": "lead", "id": crm["leads"][0]["id"]}]
    assert sorted((a["filename"], a["size"]) for a in email["attachments"]) == [("items.csv", len(CSV)), ("quote.pdf", len(PDF))]
    assert home.location_tags("VLeads") == [["CRM sync", "Synced"]]


def test_vcontacts_makes_a_contact_and_vaccounts_an_account_named_from_the_domain(home):
    home.drop("VContacts", make_mail(sender="Carla Diaz <carla@diaz.example>"))
    home.drop("VAccounts", make_mail(sender="Info <info@globex.example>"))
    assert home.run_once() == {"done": 2}
    crm = home.dump()
    assert [(c["first_name"], c["last_name"], c["emails"]) for c in crm["contacts"]] == [
        ("Carla", "Diaz", ["carla@diaz.example"])
    ]
    assert [(a["name"], a["domain"]) for a in crm["accounts"]] == [("Globex", "globex.example")]
    assert crm["leads"] == []
    links = sorted(l["kind"] for e in crm["emails"] for l in e["links"])
    assert links == ["account", "contact"]


def test_known_sender_is_not_created_again_and_a_known_lead_stays_a_lead(home):
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="first"))
    home.run_once()
    home.drop("VContacts", make_mail(sender="Bob Ray <BOB@X.ORG>", subject="second"))
    assert home.run_once() == {"done": 2}
    crm = home.dump()
    assert len(crm["leads"]) == 1 and crm["contacts"] == []
    lead_id = crm["leads"][0]["id"]
    assert sorted(e["subject"] for e in crm["emails"]) == ["first", "second"]
    assert all(e["links"] == [{"kind": "lead", "id": lead_id}] for e in crm["emails"])


def test_new_colleague_at_a_known_customer_domain_becomes_a_lead(home):
    home.drop("VAccounts", make_mail(sender="Sales <sales@acme.example>"))
    home.run_once()
    home.drop("VLeads", make_mail(sender="Nina New <nina@acme.example>"))
    home.run_once()
    crm = home.dump()
    assert [a["domain"] for a in crm["accounts"]] == ["acme.example"]
    assert [(l["first_name"], l["emails"]) for l in crm["leads"]] == [("Nina", ["nina@acme.example"])]


def test_automated_mail_in_vleads_creates_nothing(home):
    home.drop("VLeads", make_mail(sender="Bob <bob@x.org>", subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    home.drop(
        "VLeads",
        make_mail(
            sender="News <news@shop.example>",
            subject="Deals",
            headers={"List-Id": "<deals.shop.example>", "List-Unsubscribe": "<mailto:u@shop.example>"},
        ),
    )
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nTo: me@example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example>\r\n"
        b"Date: Fri, 20 Nov 2026 10:00:00 +0000\r\nReturn-Path: <>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; gone@x.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1--\r\n"
    )
    home.drop("VLeads", bounce)
    assert home.run_once() == {"skipped": 3}
    crm = home.dump()
    assert crm["leads"] == [] and crm["emails"] == []
    reasons = sorted(r.reason for r in _rows(home, "skipped"))
    assert reasons == ["auto_reply", "bounce", "list"]


def _rows(home, state):
    led = home.ledger()
    try:
        return led.messages_in([state])
    finally:
        led.close()
