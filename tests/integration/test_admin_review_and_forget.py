"""What a person decides about a message in review, and what `explain` and `forget` say and
do afterwards: resolved or created by a person, or done in the CRM with a failed write-back."""

from __future__ import annotations

import json

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.mail import make_mail


def _crm(home) -> SqlConnector:
    return SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")


def _person(home, kind: str, first: str, last: str, email: str) -> str:
    crm = _crm(home)
    try:
        return crm.create(kind, PartyData(kind=kind, first_name=first, last_name=last, emails=(email,))).id
    finally:
        crm.close()


def _one_in_review(home, sender: str, message_id: str) -> None:
    home.drop("CRM sync", make_mail(sender=sender, message_id=message_id))
    assert home.run_once().get("review") == 1


def test_explain_and_quarantine_show_of_a_message_a_person_resolved(home):
    lead = _person(home, "lead", "Zed", "Who", "zed@else.example")
    _one_in_review(home, "Stranger <who@nowhere.example>", "<resolved@nowhere.example>")
    res = home.cli("review", "resolve", "1", "--to", f"lead:{lead}", "--force")
    assert res.returncode == 0, res.stderr
    text = home.cli("explain", "1")
    assert text.returncode == 0, text.stderr
    assert "Traceback" not in text.stderr
    assert "state: done" in text.stdout
    assert f"review:attach: email 1 on lead:{lead}" in text.stdout
    assert "crm_done: every CRM step done" in text.stdout
    doc = json.loads(home.cli("explain", "<resolved@nowhere.example>", "--json", check=True).stdout)
    assert doc["state"] == "done" and doc["journal"]["crm_done"] is True
    assert doc["journal"]["review:attach"]["targets"][0]["id"] == lead
    show = home.cli("quarantine", "show", "1")
    assert show.returncode == 0, show.stderr
    assert "review:attach" in show.stdout


def test_explain_of_a_message_created_by_review_create(home):
    _one_in_review(home, "Stranger Danger <who@nowhere.example>", "<created@nowhere.example>")
    res = home.cli("review", "create", "1", "--kind", "contact")
    assert res.returncode == 0, res.stderr
    (contact,) = home.dump()["contacts"]
    text = home.cli("explain", "1", check=True).stdout
    assert f"review:create:contact:who@nowhere.example: created contact:{contact['id']}" in text
    doc = json.loads(home.cli("explain", "1", "--json", check=True).stdout)
    assert doc["journal"]["review:create:contact:who@nowhere.example"]["created"] is True


def test_explain_of_a_message_whose_write_back_failed_after_the_crm_commit(home):
    """The rule moves the mail into a folder that cannot be made (a file has its name): the
    lead and the mail are in the CRM, the tagging fails and the message waits for a retry."""
    rules = home.root / "rules" / "folders.yaml"
    text = rules.read_text()
    rules.write_text(text.replace("      - stop\n", "      - move: Archive\n      - stop\n", 1))
    (home.mail / "Archive").write_text("a file, not a folder")
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", message_id="<wb@x.org>"))
    assert home.run_once() == {"retrying": 1}
    assert len(home.dump()["leads"]) == 1
    human = home.cli("explain", "<wb@x.org>")
    assert human.returncode == 0, human.stderr
    assert "state: retrying — write-back failed" in human.stdout
    assert "crm_done: every CRM step done; only the mailbox write-back was left" in human.stdout
    assert "create:lead:bob@x.org: created lead:" in human.stdout
    doc = json.loads(home.cli("explain", "<wb@x.org>", "--json", check=True).stdout)
    assert doc["journal"]["crm_done"] is True and doc["journal"]["create:lead:bob@x.org"]["created"] is True


def test_forget_after_review_create_leaves_nothing(home):
    kept = _person(home, "contact", "Ann", "Lee", "ann@acme.example")
    home.drop("CRM sync", make_mail(sender="Ann Lee <ann@acme.example>", message_id="<ann@acme.example>"))
    _one_in_review(home, "Stranger <who@nowhere.example>", "<who1@nowhere.example>")
    assert home.states() == {"done": 1, "review": 1}
    res = home.cli("review", "create", "2", "--kind", "contact")
    assert res.returncode == 0, res.stderr
    made = [c["id"] for c in home.dump()["contacts"] if c["emails"] == ["who@nowhere.example"]]
    assert len(made) == 1
    crm = _crm(home)  # later, a person makes a record with the same address: it must stay
    mine = crm.import_party("lead", PartyData(kind="lead", first_name="Who", last_name="Else", emails=("who@nowhere.example",)))
    crm.close()
    doc = json.loads(home.cli("forget", "who@nowhere.example", "--json", check=True).stdout)
    assert [(r["kind"], str(r["id"])) for r in doc["records_deleted"]] == [("contact", str(made[0]))]
    after = home.dump()
    assert [c["id"] for c in after["contacts"]] == [int(kept)]
    assert [l["id"] for l in after["leads"]] == [int(mine.id)]  # made by a person: kept
    assert [e["message_id"] for e in after["emails"]] == ["<ann@acme.example>"]
    assert all("who@nowhere.example" not in json.dumps(e) for e in after["emails"])
    # A second request finds nothing left to erase (the CRM's own mark, not the erased journal)
    again = json.loads(home.cli("forget", "who@nowhere.example", "--json", check=True).stdout)
    assert again["records_deleted"] == [] and again["emails_removed"] == 0


def test_review_list_names_candidates_and_resolve_refuses_a_record_not_among_them(home):
    one = _person(home, "contact", "Ann", "One", "ann@acme.example")
    two = _person(home, "contact", "Ann", "Two", "ann@acme.example")
    other = _person(home, "lead", "Zed", "Who", "zed@else.example")
    _one_in_review(home, "Ann <ann@acme.example>", "<ann-amb@acme.example>")
    listed = home.cli("review", "list", check=True).stdout
    assert f"contact:{one} 'Ann One'" in listed and f"contact:{two} 'Ann Two'" in listed
    doc = json.loads(home.cli("review", "list", "--json", check=True).stdout)
    (row,) = doc["review"]
    assert [[r["name"] for r in refs] for _, refs in row["candidates"]] == [["Ann One", "Ann Two"]]

    refused = home.cli("review", "resolve", "1", "--to", f"lead:{other}")
    assert refused.returncode == 1
    assert (
        f"lead:{other} is not among the candidates of message 1 (contact:{one} 'Ann One', contact:{two} 'Ann Two'); "
        "give --force to attach it there anyway"
    ) in refused.stderr
    assert home.dump()["emails"] == [] and home.states() == {"review": 1}

    missing = home.cli("review", "resolve", "1", "--to", "contact:999")
    assert missing.returncode == 1 and "no contact with id 999 in the CRM" in missing.stderr

    forced = home.cli("review", "resolve", "1", "--to", f"lead:{other}", "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"note: lead:{other} was not among the candidates; attached there as asked (--force)" in forced.stderr
    assert forced.stdout.strip() == "1: done"
    assert home.dump()["emails"][0]["links"] == [{"kind": "lead", "id": int(other)}]


def test_resolve_to_a_candidate_says_nothing_more(home):
    one = _person(home, "contact", "Ann", "One", "ann@acme.example")
    _person(home, "contact", "Ann", "Two", "ann@acme.example")
    _one_in_review(home, "Ann <ann@acme.example>", "<ann-pick@acme.example>")
    res = home.cli("review", "resolve", "1", "--to", f"contact:{one}")
    assert res.returncode == 0 and res.stderr == "" and res.stdout.strip() == "1: done"
    assert home.dump()["emails"][0]["links"] == [{"kind": "contact", "id": int(one)}]
    bad = home.cli("review", "resolve", "1", "--to", "contact")
    assert bad.returncode == 1 and "message 1 is not review" in bad.stderr


def test_a_lead_and_a_contact_with_one_address_both_show_in_the_trace(home):
    """VLeads' rule finds among [lead, contact, account]: the lead takes the mail by the
    kinds' order, and test-rules and explain both say that the contact matched too."""
    lead = _person(home, "lead", "Bob", "Lead", "bob@x.org")
    contact = _person(home, "contact", "Bob", "Contact", "bob@x.org")
    eml = home.root / "bob.eml"
    eml.write_bytes(make_mail(sender="Bob Ray <bob@x.org>", message_id="<both-kinds@x.org>"))
    said = (
        f"bob@x.org: found lead:{lead}; also matches contact:{contact} 'Bob Contact', not used: "
        "lead comes first in kinds [lead, contact, account]"
    )
    dry = home.cli("test-rules", str(eml), "--folder", "VLeads")
    assert dry.returncode == 0, dry.stderr
    assert said in dry.stdout
    plan = json.loads(home.cli("test-rules", str(eml), "--folder", "VLeads", "--json", check=True).stdout)["plan"]
    assert any(said in step["detail"] for step in plan["trace"])
    home.drop("VLeads", eml.read_bytes())
    assert home.run_once() == {"done": 1}
    assert home.dump()["emails"][0]["links"] == [{"kind": "lead", "id": int(lead)}]
    assert said in home.cli("explain", "<both-kinds@x.org>", check=True).stdout
    doc = json.loads(home.cli("explain", "<both-kinds@x.org>", "--json", check=True).stdout)
    assert any(said in step["detail"] for step in doc["trace"])
