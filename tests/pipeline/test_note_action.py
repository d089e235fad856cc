"""The `note` action end to end on the embedded CRM: a note on the found or created records,
its text a template over the mail; exactly once through crashes at its journal steps (batch 16
and batch 1), on the records a person picks when the mail went to review, shown by
`test-rules` without writing anything, and checked by `check`."""

from __future__ import annotations

import json

import pytest
import yaml

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.mail import make_mail
from tests.pipeline.fixtures import with_notes

STEP = "note:Leads folder:0"


def _batch(home, n: int) -> None:
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["batch"] = n
    home.config_path.write_text(yaml.safe_dump(cfg))


def test_a_note_lands_on_the_created_lead_with_its_template_filled(home):
    with_notes(home)
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="Quote for 12 chairs", message_id="<q@x.org>"))
    assert home.run_once() == {"done": 1}
    crm = home.dump()
    (lead,) = crm["leads"]
    (note,) = crm["notes"]
    assert note["on"] == {"kind": "lead", "id": lead["id"]}
    assert note["text"] == "Mail from Bob Ray <bob@x.org>: Quote for 12 chairs"
    assert note["title"].startswith("Mail of 20") and note["message_id"] == "<q@x.org>"
    doc = json.loads(home.cli("explain", "<q@x.org>", "--json", check=True).stdout)
    assert doc["journal"][STEP]["targets"] == [{"kind": "lead", "id": str(lead["id"]), "name": "Bob Ray", "created": False}]
    text = home.cli("explain", "<q@x.org>", check=True).stdout
    assert f"{STEP}: note {note['id']} on lead:{lead['id']}" in text


def test_a_mail_in_two_folders_gets_one_note_and_two_mails_two(home):
    with_notes(home)
    raw = make_mail(sender="Bob Ray <bob@x.org>", subject="twice", message_id="<twice@x.org>")
    home.drop("VLeads", raw)
    home.drop("VLeads", raw)
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="other", message_id="<other@x.org>"))
    assert home.run_once() == {"done": 3}
    notes = home.dump()["notes"]
    assert sorted(n["message_id"] for n in notes) == ["<other@x.org>", "<twice@x.org>"]
    assert home.run_once() == {"done": 3}  # a rerun adds nothing
    assert len(home.dump()["notes"]) == 2


@pytest.mark.parametrize("batch", [16, 1])
@pytest.mark.parametrize("stage", ["intent", "called"])
def test_killed_at_the_note_step_then_run_again_leaves_one_note(home, stage, batch):
    with_notes(home)
    _batch(home, batch)
    home.drop("VLeads", make_mail(sender="Ann Lee <ann@a.example>", subject="before", message_id="<before@a.example>"))
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="crash", message_id="<crash@x.org>"))
    killed = home.cli("run", "--once", env={"CRM_GATEWAY_CRASH_AT": f"{STEP}:{stage}"})
    assert killed.returncode == 137, killed.stderr
    again = home.cli("run", "--once")
    assert again.returncode == 0, again.stderr
    crm = home.dump()
    assert home.states() == {"done": 2}
    by_mail = sorted((n["message_id"], n["on"]["kind"]) for n in crm["notes"])
    assert by_mail == [("<before@a.example>", "lead"), ("<crash@x.org>", "lead")]
    assert len(crm["leads"]) == 2 and len(crm["emails"]) == 2


def test_in_review_the_note_goes_on_the_record_the_person_picks(home):
    with_notes(home)
    crm = SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")
    try:
        one = crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name="One", emails=("ann@acme.example",)))
        crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name="Two", emails=("ann@acme.example",)))
    finally:
        crm.close()
    home.drop("CRM sync", make_mail(sender="Ann <ann@acme.example>", subject="which Ann", message_id="<amb@acme.example>"))
    assert home.run_once() == {"review": 1}
    assert home.dump()["notes"] == []  # nothing before a person decides
    res = home.cli("review", "resolve", "1", "--to", f"contact:{one.id}")
    assert res.returncode == 0, res.stderr
    (note,) = home.dump()["notes"]
    assert note["on"] == {"kind": "contact", "id": int(one.id)}
    assert note["text"] == "Mail from Ann <ann@acme.example>: which Ann"
    doc = json.loads(home.cli("explain", "<amb@acme.example>", "--json", check=True).stdout)
    assert doc["journal"]["review:note:CRM sync folder:0"]["note_ids"] == [str(note["id"])]


def test_test_rules_shows_the_note_and_writes_nothing(home):
    with_notes(home)
    eml = home.root / "in.eml"
    eml.write_bytes(make_mail(sender="Bob Ray <bob@x.org>", subject="Quote"))
    res = home.cli("test-rules", str(eml), "--folder", "VLeads", "--json")
    assert res.returncode == 0, res.stderr
    (planned,) = json.loads(res.stdout)["plan"]["notes"]
    assert planned["key"] == STEP and planned["text"] == "Mail from Bob Ray <bob@x.org>: Quote"
    assert [t["create_key"] for t in planned["targets"]] == ["create:lead:bob@x.org"]
    human = home.cli("test-rules", str(eml), "--folder", "VLeads", check=True).stdout
    assert "note on new:create:lead:bob@x.org: 'Mail from Bob Ray <bob@x.org>: Quote'" in human
    assert home.dump()["notes"] == [] and home.dump()["leads"] == []


def test_check_names_an_unknown_placeholder_in_a_note_where_it_is(home):
    path = home.root / "rules" / "folders.yaml"
    text = path.read_text().replace(
        "      - attach: {to: all}\n", "      - attach: {to: all}\n      - note: {text: 'About {subjet}'}\n", 1
    )
    path.write_text(text)
    line = text.splitlines().index("      - note: {text: 'About {subjet}'}") + 1
    res = home.cli("check")
    assert res.returncode == 1
    assert f"folders.yaml:{line}:" in res.stderr
    assert "note.text: unknown placeholder '{subjet}' (did you mean 'subject'?)" in res.stderr
