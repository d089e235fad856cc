"""The webCRM "CRM sync" folder (rules/crm-sync.yaml): find, attach, review — never create."""

from __future__ import annotations

import json

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.mail import make_mail


def _crm(home) -> SqlConnector:
    return SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")


def _contact(home, first, last, *emails):
    crm = _crm(home)
    try:
        return crm.create(
            "contact", PartyData(kind="contact", first_name=first, last_name=last, emails=emails, owner="me@example.com")
        )
    finally:
        crm.close()


def test_inbound_mail_attaches_to_the_senders_contact(home):
    ann = _contact(home, "Ann", "Lee", "ann@acme.example", "a.lee@acme.example")
    home.drop("CRM sync", make_mail(sender="Ann Lee <A.Lee@acme.example>", subject="Re: offer"))
    assert home.run_once() == {"done": 1}
    crm = home.dump()
    assert len(crm["contacts"]) == 1 and crm["leads"] == []
    assert crm["emails"][0]["links"] == [{"kind": "contact", "id": int(ann.id)}]
    assert crm["emails"][0]["direction"] == "inbound"
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]]


def test_sent_mail_attaches_to_every_recipients_contact_not_bcc(home):
    ann = _contact(home, "Ann", "Lee", "ann@acme.example")
    cid = _contact(home, "Cid", "Moe", "cid@globex.example")
    _contact(home, "Hidden", "Bcc", "hidden@z.example")
    raw = make_mail(
        sender="Me <me@example.com>",
        to=["Ann <ann@acme.example>"],
        cc=["cid@globex.example", "colleague@example.com"],
        headers={"Bcc": "hidden@z.example"},
        subject="Our offer",
    )
    home.drop("CRM sync", raw)
    assert home.run_once() == {"done": 1}
    crm = home.dump()
    (email,) = crm["emails"]
    assert email["direction"] == "outbound"
    assert sorted((l["kind"], l["id"]) for l in email["links"]) == [("contact", int(ann.id)), ("contact", int(cid.id))]


def test_counterpart_matching_nobody_goes_to_review_and_creates_nothing(home):
    home.drop("CRM sync", make_mail(sender="Stranger <who@nowhere.example>"))
    assert home.run_once() == {"review": 1}
    crm = home.dump()
    assert crm["leads"] == [] and crm["contacts"] == [] and crm["emails"] == []
    assert home.location_tags("CRM sync") == [["CRM review"]]
    listed = json.loads(home.cli("review", "list", "--json", check=True).stdout)
    assert [r["from"] for r in listed["review"]] == ["who@nowhere.example"]


def test_gmail_sender_is_never_matched_to_an_account_by_domain(home):
    crm = _crm(home)
    crm.create("account", PartyData(kind="account", name="Google", domain="gmail.com"))
    crm.close()
    home.drop("CRM sync", make_mail(sender="Pat <pat@gmail.com>"))
    assert home.run_once() == {"review": 1}
    assert home.dump()["emails"] == []


def test_ambiguous_address_goes_to_review_then_review_resolve_attaches_and_tags(home):
    first = _contact(home, "Ann", "Lee", "shared@acme.example")
    second = _contact(home, "Ann", "Lee-Two", "shared@acme.example")
    home.drop("CRM sync", make_mail(sender="Ann <shared@acme.example>", subject="which one"))
    assert home.run_once() == {"review": 1}
    listed = json.loads(home.cli("review", "list", "--json", check=True).stdout)["review"]
    (item,) = listed
    cands = {r["id"] for _, refs in item["candidates"] for r in refs}
    assert cands == {first.id, second.id}
    assert home.dump()["emails"] == []

    res = home.cli("review", "resolve", str(item["id"]), "--to", f"contact:{second.id}")
    assert res.returncode == 0, res.stderr
    (email,) = home.dump()["emails"]
    assert email["links"] == [{"kind": "contact", "id": int(second.id)}]
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]]
    assert home.states() == {"done": 1}


def test_review_resolve_to_a_record_that_does_not_exist_is_a_user_error(home):
    home.drop("CRM sync", make_mail(sender="Stranger <who@nowhere.example>"))
    home.run_once()
    res = home.cli("review", "resolve", "1", "--to", "contact:999")
    assert res.returncode == 1
    assert "no contact with id 999" in res.stderr


def test_review_create_makes_the_record_and_attaches(home):
    home.drop("CRM sync", make_mail(sender="Stella Star <stella@new.example>"))
    home.run_once()
    res = home.cli("review", "create", "1", "--kind", "lead")
    assert res.returncode == 0, res.stderr
    crm = home.dump()
    assert [(l["first_name"], l["last_name"], l["emails"]) for l in crm["leads"]] == [("Stella", "Star", ["stella@new.example"])]
    assert crm["emails"][0]["links"] == [{"kind": "lead", "id": crm["leads"][0]["id"]}]


def test_reply_attaches_to_the_records_of_its_thread_even_from_an_unknown_sender(home):
    ann = _contact(home, "Ann", "Lee", "ann@acme.example")
    first = make_mail(sender="Ann <ann@acme.example>", subject="Project", message_id="<thread-1@acme.example>")
    home.drop("CRM sync", first)
    home.run_once()
    reply = make_mail(sender="Boss <boss@acme-partner.example>", subject="Re: Project", in_reply_to="<thread-1@acme.example>")
    home.drop("CRM sync", reply)
    assert home.run_once() == {"done": 2}
    crm = home.dump()
    assert crm["contacts"] == [c for c in crm["contacts"] if c["id"] == int(ann.id)]
    by_subject = {e["subject"]: e["links"] for e in crm["emails"]}
    assert by_subject["Re: Project"] == [{"kind": "contact", "id": int(ann.id)}]
