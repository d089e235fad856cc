"""A Plan the ledger holds, read back as the engine's Plan: the Plans stored by earlier
versions (the JSON text below is `Plan.to_json`'s output as the gateway stores it) decode
whole, and `explain`, `review list` and `review resolve` show and use them as stored."""

from __future__ import annotations

import json
from datetime import datetime

from gateway.crm.base import PartyData, PartyRef
from gateway.crm.sql import SqlConnector
from gateway.engine.model import OnError, TraceStep
from gateway.ledger.schema import messages
from gateway.pipeline.journal import plan_of
from tests.mail import make_mail

# A review Plan as `CRM sync` stores it for a sender with two contacts (trace cut short, one
# `found` entry added); ONE and TWO stand for the contacts' ids.
STORED = (
    '{"outcome": "review", "direction": "inbound", "counterparts": ["ann@acme.example"], '
    '"reason": "ann@acme.example matches 2 contacts; no record to attach to", "creates": [], "attach": null, '
    '"notes": [], "tags_add": ["CRM sync", "Synced"], "tags_remove": [], "move": null, '
    '"review": {"reason": "ann@acme.example matches 2 contacts; no record to attach to", "candidates": '
    '[["ann@acme.example", [{"kind": "contact", "id": "ONE", "name": "Ann One", "created_at": '
    '"2026-12-03T13:00:05.088886+00:00"}, {"kind": "contact", "id": "TWO", "name": "Ann Two", "created_at": '
    '"2026-12-03T13:00:05.091098+00:00"}]]]}, "on_error": {"tags": ["CRM error"], "untags": [], "move": null}, '
    '"touched": ["CRM sync folder"], "found": {"bob@x.org": [{"kind": "lead", "id": "7", "name": "Bob Ray", '
    '"created_at": null}]}, "found_by_domain": {}, "trace": [{"rule": "", "event": "note", "detail": '
    '"direction inbound; counterpart ann@acme.example", "result": null}, {"rule": "CRM sync folder", "event": '
    '"condition", "detail": "folder \'CRM sync\' is \'CRM sync\'", "result": true}, {"rule": "CRM sync folder", '
    '"event": "action", "detail": "find counterpart among contact, lead (pick unique): ann@acme.example: '
    'ambiguous, 2 contacts (contact:ONE, contact:TWO) \\u2192 review", "result": null}, {"rule": "CRM sync '
    'folder", "event": "action", "detail": "attach: no record to attach to \\u2192 review", "result": null}]}'
)


def _two_anns(home) -> tuple[str, str]:
    crm = SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")
    try:
        one, two = (
            crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name=last, emails=("ann@acme.example",))).id
            for last in ("One", "Two")
        )
        return one, two
    finally:
        crm.close()


def _in_review_with_stored_plan(home, text: str) -> None:
    """A message in review whose row holds `text` as its Plan, as an earlier version left it."""
    home.drop("CRM sync", make_mail(sender="Ann <ann@acme.example>", message_id="<old@acme.example>"))
    assert home.run_once() == {"review": 1}
    led = home.ledger()
    try:
        with led.engine.begin() as c:
            c.execute(messages.update().where(messages.c.id == 1).values(plan_json=text))
    finally:
        led.close()


def _stored_row(home):
    led = home.ledger()
    try:
        return led.message(1)
    finally:
        led.close()


def test_a_stored_review_plan_reads_back_whole_and_writes_the_same_json(home):
    one, two = _two_anns(home)
    text = STORED.replace("ONE", one).replace("TWO", two)
    _in_review_with_stored_plan(home, text)
    plan = plan_of(_stored_row(home))
    assert plan is not None and plan.outcome == "review" and plan.direction == "inbound"
    assert plan.review is not None
    ((address, refs),) = plan.review.candidates
    assert address == "ann@acme.example"
    assert [(r.kind, r.id, r.name) for r in refs] == [("contact", one, "Ann One"), ("contact", two, "Ann Two")]
    assert refs[0].created_at == datetime.fromisoformat("2026-12-03T13:00:05.088886+00:00")
    assert plan.found == {"bob@x.org": [PartyRef("lead", "7", "Bob Ray")]}
    assert plan.trace[1] == TraceStep("CRM sync folder", "condition", "folder 'CRM sync' is 'CRM sync'", True)
    assert plan.on_error == OnError(("CRM error",), (), None)
    assert plan.tags_add == ["CRM sync", "Synced"] and plan.touched == ["CRM sync folder"]
    assert plan.to_json() == json.loads(text)  # nothing lost, nothing added


def test_a_plan_stored_before_notes_existed_reads_back_without_notes(home):
    one, two = _two_anns(home)
    old = json.loads(STORED.replace("ONE", one).replace("TWO", two))
    del old["notes"]
    _in_review_with_stored_plan(home, json.dumps(old))
    plan = plan_of(_stored_row(home))
    assert plan is not None and plan.notes == [] and plan.review is not None


def test_explain_review_list_and_resolve_use_a_stored_plan_as_it_was_stored(home):
    one, two = _two_anns(home)
    text = STORED.replace("ONE", one).replace("TWO", two)
    stored = json.loads(text)
    _in_review_with_stored_plan(home, text)

    doc = json.loads(home.cli("explain", "1", "--json", check=True).stdout)
    assert doc["review"] == stored["review"]
    assert doc["found"] == stored["found"] and doc["found_by_domain"] == {}
    assert doc["trace"] == stored["trace"]
    assert doc["rules"] == ["CRM sync folder"] and doc["direction"] == "inbound"
    assert doc["counterparts"] == ["ann@acme.example"]
    assert doc["planned_tags"] == {"add": ["CRM sync", "Synced"], "remove": [], "move": None}
    human = home.cli("explain", "1", check=True).stdout
    assert f"contact:{one} Ann One, contact:{two} Ann Two" in human
    assert "✓ CRM sync folder: condition: folder 'CRM sync' is 'CRM sync'" in human

    (listed,) = json.loads(home.cli("review", "list", "--json", check=True).stdout)["review"]
    assert listed["candidates"] == stored["review"]["candidates"]
    assert listed["counterparts"] == ["ann@acme.example"]

    res = home.cli("review", "resolve", "1", "--to", f"contact:{two}")
    assert res.returncode == 0 and res.stdout.strip() == "1: done", res.stderr
    assert home.dump()["emails"][0]["links"] == [{"kind": "contact", "id": int(two)}]
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]]
