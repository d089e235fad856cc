"""The contact sync against a real Radicale: CRM → address book, back, merges, conflicts,
deletes, plain SQL, reassignment (gateway/pimsync/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World, edited


@pytest.fixture
def world(tmp_path: Path, radicale: Radicale, users: tuple[str, str]) -> Iterator[World]:
    w = World(tmp_path, radicale, *users)
    yield w
    w.close()


def sync(w: World) -> str:
    proc = w.home.cli("pimsync")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def only_card(w: World, user: str) -> tuple[str, str, str]:
    """(href, etag, text) of the one card in the user's address book."""
    cards = w.cards(user)
    assert len(cards) == 1, cards
    href = next(iter(cards))
    etag, text = w.card_text(user, href)
    return href, etag, text


def test_a_crm_contact_reaches_its_owner_and_an_edit_of_the_card_comes_back(world: World) -> None:
    rec = world.add_contact(
        world.alice,
        "t1",
        first_name="Ada",
        last_name="Lovelace",
        emails=("ada@example.org",),
        title="Analyst",
        organization="Engines Ltd",
        phone_work="+44 20 1234",
        city="London",
    )
    out = sync(world)
    assert f"{world.alice}-contacts: cards 1 created" in out

    (card,) = [c for _, c in world.cards(world.alice).values()]
    assert card.fields == rec.fields
    assert world.cards(world.bob) == {}

    href, etag, text = only_card(world, world.alice)
    world.put_card(world.alice, href, edited(text, title="Countess", tel="+44 20 9999"), etag)
    sync(world)
    now = world.contacts.get_contact(rec.id)
    assert now is not None
    assert (now.fields.title, now.fields.phone_work, now.fields.city) == ("Countess", "+44 20 9999", "London")
    assert world.sql("SELECT count(*) FROM contacts") == [(1,)]


def test_a_card_made_in_the_mailbox_becomes_a_contact_of_the_mailbox_user(world: World) -> None:
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:phone-made-1\r\nFN:Grace Hopper\r\nN:Hopper;Grace;;;\r\n"
        "EMAIL;TYPE=INTERNET:grace@navy.example\r\nORG:Navy\r\nTEL;TYPE=CELL:+1 555 0100\r\nEND:VCARD\r\n"
    )
    world.put_card(world.bob, f"/{world.bob}/contacts/grace.vcf", card)
    sync(world)
    (rec,) = world.crm_contacts(world.bob)
    assert (rec.fields.first_name, rec.fields.last_name, rec.fields.emails) == ("Grace", "Hopper", ("grace@navy.example",))
    assert (rec.fields.organization, rec.fields.phone_mobile) == ("Navy", "+1 555 0100")
    assert world.sql("SELECT name FROM accounts") == [("Navy",)]  # the reference is created and linked
    sync(world)  # and nothing comes back a second time
    assert len(world.crm_contacts(world.bob)) == 1 and len(world.cards(world.bob)) == 1


def test_edits_on_both_sides_merge_and_a_field_edited_on_both_is_a_listed_conflict(world: World) -> None:
    rec = world.add_contact(world.alice, "t3", first_name="Alan", last_name="Turing", title="Fellow", city="Cambridge")
    sync(world)
    href, etag, text = only_card(world, world.alice)

    world.edit_contact(rec.id, city="Manchester", title="Reader")  # the CRM first ...
    # ... then the card, later (its REV says so): its title is the newer change
    world.put_card(world.alice, href, edited(text, title="Professor", tel="+44 161 0000", rev="20990101T000000Z"), etag)
    out = sync(world)
    assert "1 conflicts" in out

    now = world.contacts.get_contact(rec.id)
    assert now is not None
    assert (now.fields.city, now.fields.phone_work, now.fields.title) == ("Manchester", "+44 161 0000", "Professor")
    (_, card) = next(iter(world.cards(world.alice).values()))
    assert (card.fields.city, card.fields.phone_work, card.fields.title) == ("Manchester", "+44 161 0000", "Professor")

    listed = world.home.cli("pimsync", "conflicts")
    assert listed.returncode == 0
    assert f'{world.alice}-contacts contact:{rec.id} title: crm="Reader" card="Professor" → card kept' in listed.stdout
    assert "city" not in listed.stdout and "phone" not in listed.stdout


def test_deleted_in_the_crm_the_card_goes_deleted_in_the_mailbox_the_contact_is_unlinked(world: World) -> None:
    gone = world.add_contact(world.alice, "t4a", first_name="Gone", last_name="Soon")
    kept = world.add_contact(world.alice, "t4b", first_name="Kept", last_name="Contact")
    sync(world)
    assert len(world.cards(world.alice)) == 2

    world.sql("DELETE FROM contacts WHERE id = ?", int(gone.id))
    sync(world)
    (only,) = world.cards(world.alice)
    assert only.endswith(f"crm-contact-{kept.id}.vcf")

    world.delete_card(world.alice, only)
    out = sync(world)
    assert "1 unlinked" in out
    assert [c.id for c in world.crm_contacts(world.alice)] == [kept.id]  # unlinked, not deleted
    world.edit_contact(kept.id, title="Still here")
    sync(world)
    assert world.cards(world.alice) == {}  # and not sent back


def test_with_on_card_deleted_delete_the_crm_contact_goes_with_its_card(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    world = World(tmp_path, radicale, *users, on_card_deleted="delete")
    try:
        world.add_contact(world.alice, "t5", first_name="Short", last_name="Lived")
        sync(world)
        (href,) = world.cards(world.alice)
        world.delete_card(world.alice, href)
        assert "records 0 created, 0 updated, 1 deleted" in sync(world)
        assert world.sql("SELECT count(*) FROM contacts") == [(0,)]
    finally:
        world.close()


def test_a_contact_inserted_by_plain_sql_reaches_the_address_book(world: World) -> None:
    world.sql(
        "INSERT INTO contacts (owner, fields, created_by_gateway, created_at, first_name, last_name, title) "
        "VALUES (?, '{}', 0, '2026-01-01 00:00:00', 'Plain', 'Sql', 'Imported')",
        world.owner(world.bob),
    )
    (cid,) = world.sql("SELECT id FROM contacts")[0]
    world.sql(
        "INSERT INTO party_emails (kind, party_id, address, address_key) VALUES ('contact', ?, 'p@sql.example', 'p@sql.example')",
        cid,
    )
    sync(world)
    (_, card) = next(iter(world.cards(world.bob).values()))
    assert (card.fields.first_name, card.fields.title, card.fields.emails) == ("Plain", "Imported", ("p@sql.example",))


def test_reassigning_a_hundred_contacts_moves_their_cards_once(world: World) -> None:
    for i in range(100):
        world.add_contact(world.alice, f"t7-{i}", first_name="Person", last_name=f"No{i:03}")
    sync(world)
    assert len(world.cards(world.alice)) == 100

    world.sql("UPDATE contacts SET owner = ?", world.owner(world.bob))
    out = sync(world)
    assert f"{world.alice}-contacts: cards 0 created, 0 updated, 100 removed" in out
    assert f"{world.bob}-contacts: cards 100 created" in out
    assert world.cards(world.alice) == {}
    names = sorted(card.fields.last_name for _, card in world.cards(world.bob).values())
    assert names == [f"No{i:03}" for i in range(100)]

    out = sync(world)  # once: a second round moves nothing
    assert out.count("cards 0 created, 0 updated, 0 removed") == 2
    assert len(world.cards(world.bob)) == 100 and world.sql("SELECT count(*) FROM contacts") == [(100,)]


def test_an_address_the_mail_pipeline_adds_and_one_added_on_the_phone_both_stay(world: World) -> None:
    from gateway.crm.base import PartyRef

    rec = world.add_contact(world.alice, "t8", first_name="Mia", emails=("mia@a.example",))
    sync(world)
    href, etag, text = only_card(world, world.alice)
    world.crm.add_email_address(PartyRef("contact", rec.id), "mia@mail.example")  # as the pipeline does
    world.put_card(world.alice, href, text.replace("END:VCARD", "EMAIL;TYPE=INTERNET:mia@phone.example\r\nEND:VCARD"), etag)
    assert "0 conflicts" in sync(world)
    want = ("mia@a.example", "mia@mail.example", "mia@phone.example")
    now = world.contacts.get_contact(rec.id)
    assert now is not None and now.fields.emails == want
    (_, card) = next(iter(world.cards(world.alice).values()))
    assert card.fields.emails == want
