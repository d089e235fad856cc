"""A crash (an exception raised at a journal step) in the middle of a sync round, then the
next rounds: no duplicate card, no duplicate CRM record, and the round's work all done."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gateway.pimsync.rounds import sync_all
from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World, edited

STEPS = [
    "put_card:intent",
    "put_card:written",
    "create_crm:intent",
    "create_crm:created",
    "update_crm:before",
    "update_crm:written",
    "update_card:before",
    "update_card:written",
    "delete_card:intent",
    "delete_card:done",
    "cursor:before",
]


class Crash(BaseException):
    """Stands for the process dying: not an error a round catches and reports per book."""


def crash_at(step: str):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def checkpoint(name: str) -> None:
        seen.append(name)
        if name == step:
            raise Crash(step)

    return checkpoint, seen


@pytest.mark.parametrize("step", STEPS)
def test_a_round_crashed_at_any_step_then_run_again_duplicates_nothing(
    step: str, tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    w = World(tmp_path, radicale, *users)
    try:
        both = w.add_contact(w.alice, "both", first_name="Both", last_name="Sides", city="Oslo")
        doomed = w.add_contact(w.alice, "doomed", first_name="Doomed", last_name="Record")
        mover = w.add_contact(w.alice, "mover", first_name="Moving", last_name="Person")
        assert w.home.cli("pimsync").returncode == 0
        # what the crashing round has to do: every kind of journalled write
        w.add_contact(w.alice, "new", first_name="New", last_name="InCrm")
        w.put_card(
            w.alice,
            f"/{w.alice}/contacts/from-phone.vcf",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:from-phone\r\nFN:From Phone\r\nN:Phone;From;;;\r\nEND:VCARD\r\n",
        )
        w.edit_contact(both.id, city="Bergen")
        href = next(h for h, (_, c) in w.cards(w.alice).items() if c.fields.first_name == "Both")
        etag, text = w.card_text(w.alice, href)
        w.put_card(w.alice, href, edited(text, tel="+47 1"), etag)
        w.sql("DELETE FROM contacts WHERE id = ?", int(doomed.id))
        w.sql("UPDATE contacts SET owner = ? WHERE id = ?", w.owner(w.bob), int(mover.id))

        checkpoint, seen = crash_at(step)
        with pytest.raises(Crash):
            sync_all(w.home.config(), checkpoint=checkpoint)
        assert seen[-1] == step
        for _ in range(2):
            proc = w.home.cli("pimsync")
            assert proc.returncode == 0, proc.stdout + proc.stderr

        names = Counter((r.fields.first_name, r.fields.last_name) for r in w.crm_contacts(w.alice))
        assert names == Counter({("Both", "Sides"): 1, ("New", "InCrm"): 1, ("From", "Phone"): 1})
        assert w.sql("SELECT count(*) FROM contacts") == [(4,)]  # and the mover, now bob's
        cards = Counter((c.fields.first_name, c.fields.last_name) for _, c in w.cards(w.alice).values())
        assert cards == names
        assert [c.fields.first_name for _, c in w.cards(w.bob).values()] == ["Moving"]
        merged = w.contacts.get_contact(both.id)
        assert merged is not None and (merged.fields.city, merged.fields.phone_work) == ("Bergen", "+47 1")
    finally:
        w.close()


def test_with_on_card_deleted_delete_a_crash_after_the_record_went_leaves_it_gone_once(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    w = World(tmp_path, radicale, *users, on_card_deleted="delete")
    try:
        w.add_contact(w.alice, "stays", first_name="Stays")
        w.add_contact(w.alice, "goes", first_name="Goes")
        assert w.home.cli("pimsync").returncode == 0
        href = next(h for h, (_, c) in w.cards(w.alice).items() if c.fields.first_name == "Goes")
        w.delete_card(w.alice, href)

        checkpoint, _ = crash_at("delete_record:done")
        with pytest.raises(Crash):
            sync_all(w.home.config(), checkpoint=checkpoint)
        proc = w.home.cli("pimsync")
        assert proc.returncode == 0, proc.stderr
        assert f"{w.alice}-contacts: cards 0 created, 0 updated, 0 removed" in proc.stdout  # nothing more to do
        assert [c.fields.first_name for c in w.crm_contacts(w.alice)] == ["Stays"]
        assert [c.fields.first_name for _, c in w.cards(w.alice).values()] == ["Stays"]
        assert w.sql("SELECT count(*) FROM contacts") == [(1,)]
    finally:
        w.close()
