"""A person's review decision killed like `kill -9` after each of its journal steps, then
decided again: one record, one attachment, one note, and the decision's steps in the journal
under the `review:` keys the ledgers in the field already hold."""

from __future__ import annotations

import json

import pytest

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.mail import make_mail
from tests.pipeline.fixtures import with_notes

CREATE = "review:create:lead:ann@acme.example"
NOTE = "review:note:CRM sync folder:0"
STEPS = [
    f"{CREATE}:intent",
    f"{CREATE}:called",
    f"{CREATE}:result",
    "review:attach:intent",
    "review:attach:called",
    "review:attach:result",
    f"{NOTE}:intent",
    f"{NOTE}:called",
    f"{NOTE}:result",
    "crm_done",
]


def _ann_in_review(home) -> list[str]:
    """Two contacts share Ann's address, so her mail waits for a person; their ids."""
    with_notes(home)
    crm = SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")
    try:
        ids = [
            crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name=last, emails=("ann@acme.example",))).id
            for last in ("One", "Two")
        ]
    finally:
        crm.close()
    home.drop(
        "CRM sync",
        make_mail(
            sender="Ann <ann@acme.example>",
            subject="which Ann",
            message_id="<which@acme.example>",
            attachments=[("a.bin", "application/octet-stream", b"\x00\x01" * 5000)],
        ),
    )
    assert home.run_once() == {"review": 1}
    return ids


@pytest.mark.parametrize("step", STEPS)
def test_review_create_killed_at_each_journal_step_then_decided_again(home, step):
    contacts = _ann_in_review(home)
    killed = home.cli("review", "create", "1", "--kind", "lead", env={"CRM_GATEWAY_CRASH_AT": step})
    assert killed.returncode == 137, killed.stderr
    again = home.cli("review", "create", "1", "--kind", "lead")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "1: done"

    crm = home.dump()
    (lead,) = crm["leads"]  # a new lead, as asked, even after a crash: Ann's contacts are not it
    assert lead["emails"] == ["ann@acme.example"]
    assert sorted(str(c["id"]) for c in crm["contacts"]) == sorted(contacts)
    (email,) = crm["emails"]
    assert email["links"] == [{"kind": "lead", "id": lead["id"]}]
    assert len(email["attachments"]) == 1
    (note,) = crm["notes"]
    assert note["on"] == {"kind": "lead", "id": lead["id"]}
    assert home.states() == {"done": 1}
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]]

    journal = json.loads(home.cli("explain", "1", "--json", check=True).stdout)["journal"]
    assert journal[CREATE]["created"] is True and journal[CREATE]["id"] == str(lead["id"])
    assert str(journal["review:attach"]["email_id"]) == str(email["id"])
    assert journal[NOTE]["note_ids"] == [str(note["id"])]
    assert journal["crm_done"] is True


@pytest.mark.parametrize("step", ["review:attach:called", f"{NOTE}:called"])
def test_review_resolve_killed_after_a_call_then_decided_again(home, step):
    one, _ = _ann_in_review(home)
    killed = home.cli("review", "resolve", "1", "--to", f"contact:{one}", env={"CRM_GATEWAY_CRASH_AT": step})
    assert killed.returncode == 137, killed.stderr
    again = home.cli("review", "resolve", "1", "--to", f"contact:{one}")
    assert again.returncode == 0 and again.stdout.strip() == "1: done", again.stderr
    crm = home.dump()
    (email,) = crm["emails"]
    assert email["links"] == [{"kind": "contact", "id": int(one)}] and len(email["attachments"]) == 1
    (note,) = crm["notes"]
    assert note["on"] == {"kind": "contact", "id": int(one)}
    assert crm["leads"] == [] and home.states() == {"done": 1}
