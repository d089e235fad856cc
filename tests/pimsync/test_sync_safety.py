"""The contact sync where a slip would lose or mix up people's data, against a real Radicale:
an id the CRM gives again, hrefs spelled two ways, a mass removal, two cards with one UID, a
card's REV from the future."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gateway.ledger.store import Ledger
from gateway.mailboxes.carddav.client import CardDavClient
from gateway.mailboxes.carddav.config import AddressBookConfig
from gateway.pimsync.book import sync_book
from gateway.pimsync.rounds import sync_all
from tests.pimsync.radicale_server import PASSWORD, Radicale
from tests.pimsync.world import World, edited


@pytest.fixture
def world(tmp_path: Path, radicale: Radicale, users: tuple[str, str]) -> Iterator[World]:
    w = World(tmp_path, radicale, *users)
    yield w
    w.close()


def sync(w: World) -> str:
    proc = w.home.cli("pimsync")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def phone_card(uid: str, first: str, last: str, extra: str = "") -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{first} {last}\r\nN:{last};{first};;;\r\n{extra}END:VCARD\r\n"


def test_a_deleted_contact_s_id_is_not_given_again(world: World) -> None:
    ada = world.add_contact(world.alice, "k1", first_name="Ada", last_name="Lovelace")
    world.contacts.delete_contact(ada.id)
    bob = world.add_contact(world.alice, "k2", first_name="Bob", last_name="Builder")
    assert int(bob.id) > int(ada.id)


def test_a_new_record_under_a_deleted_record_s_id_never_takes_over_its_card(world: World) -> None:
    ada = world.add_contact(world.alice, "k1", first_name="Ada", last_name="Lovelace", emails=("ada@x.example",))
    sync(world)
    (href,) = world.cards(world.alice)
    etag, text = world.card_text(world.alice, href)
    private = text.replace("END:VCARD", "NOTE:private note about Ada\r\nBDAY:1815-12-10\r\nEND:VCARD")
    world.put_card(world.alice, href, private, etag)
    sync(world)

    # another program deletes Ada and inserts Bob under her id (as an import restoring ids would)
    world.contacts.delete_contact(ada.id)
    world.sql(
        "INSERT INTO contacts (id, owner, fields, created_by_gateway, created_at, first_name, last_name) "
        "VALUES (?, ?, '{}', 0, '2030-01-01 00:00:00', 'Bob', 'Builder')",
        int(ada.id),
        world.owner(world.alice),
    )
    sync(world)
    cards = world.cards(world.alice)
    assert [(c.fields.first_name, c.fields.last_name) for _, c in cards.values()] == [("Bob", "Builder")]
    (bob_href,) = cards
    _, bob_text = world.card_text(world.alice, bob_href)
    assert "Ada" not in bob_text and "private note" not in bob_text and "1815" not in bob_text
    assert [(r.fields.first_name, r.fields.emails) for r in world.crm_contacts(world.alice)] == [("Bob", ())]


def test_the_feed_reports_a_delete_before_a_new_record_under_the_same_id(world: World) -> None:
    ada = world.add_contact(world.alice, "k1", first_name="Ada")
    version = world.contacts.changes_since(0)[1]
    world.sql("DELETE FROM contacts WHERE id = ?", int(ada.id))
    world.sql(
        "INSERT INTO contacts (id, owner, fields, created_by_gateway, created_at, first_name, last_name) "
        "VALUES (?, ?, '{}', 0, '2030-01-01 00:00:00', 'Bob', '')",
        int(ada.id),
        world.owner(world.alice),
    )
    changes, _ = world.contacts.changes_since(version)
    assert [(c.id, c.deleted) for c in changes] == [(ada.id, True), (ada.id, False)]


def test_a_percent_encoded_book_url_syncs_each_card_once(tmp_path: Path, radicale: Radicale, users: tuple[str, str]) -> None:
    alice, _ = users
    w = World(tmp_path, radicale, *users, on_card_deleted="delete")
    try:
        url = radicale.make_addressbook(alice, "my contacts").replace(" ", "%20")
        book = AddressBookConfig(name="spaced", url=url, username=alice, password=PASSWORD, crm_user=w.owner(alice))
        w.add_contact(alice, "k1", first_name="Ada", last_name="Lovelace")
        w.put_card(alice, f"/{alice}/my contacts/phone.vcf", phone_card("phone-1", "Grace", "Hopper"))
        ledger = Ledger(f"sqlite:///{tmp_path / 'spaced-ledger.db'}")
        try:
            for _ in range(3):
                with CardDavClient(book) as client:
                    report = sync_book(book, w.contacts, ledger.pim(), client, delete_records=True)
            assert (report.records_created, report.records_deleted, report.cards_created) == (0, 0, 0)
            assert sorted(r.fields.first_name for r in w.crm_contacts(alice)) == ["Ada", "Grace"]
            assert sorted(link.href for link in ledger.pim().links("spaced")) == [
                f"/{alice}/my contacts/crm-contact-1.vcf",
                f"/{alice}/my contacts/phone.vcf",
            ]
        finally:
            ledger.close()
    finally:
        w.close()


def test_hrefs_are_one_spelling_whatever_the_server_writes() -> None:
    book = AddressBookConfig(name="b", url="https://dav.example/u/my%20contacts/", crm_user="u")
    with CardDavClient(book) as client:
        want = "/u/my contacts/a b.vcf"
        for spelled in ("https://dav.example/u/my%20contacts/a%20b.vcf", "/u/my%20contacts/a%20b.vcf", "a%20b.vcf", want):
            assert client.norm(spelled) == want
        assert client.href_for("a b.vcf") == want


def test_a_round_that_would_remove_most_of_a_book_stops_and_says_so(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    w = World(tmp_path, radicale, *users, on_card_deleted="delete")
    try:
        for i in range(12):
            w.add_contact(w.alice, f"m{i}", first_name="Many", last_name=f"No{i}")
        sync(w)
        for href in list(w.cards(w.alice))[:11]:
            w.delete_card(w.alice, href)
        proc = w.home.cli("pimsync")
        assert proc.returncode == 1
        assert "11 of the 12 cards" in proc.stderr and "allow_mass_removal" in proc.stderr
        assert w.sql("SELECT count(*) FROM contacts") == [(12,)]
        assert f"{w.bob}-contacts: cards 0 created" in proc.stdout  # the other book still synced

        cfg = yaml.safe_load(w.home.config_path.read_text())
        cfg["pimsync"]["allow_mass_removal"] = True
        w.home.config_path.write_text(yaml.safe_dump(cfg))
        assert "records 0 created, 0 updated, 11 deleted" in sync(w)
        assert w.sql("SELECT count(*) FROM contacts") == [(1,)]
    finally:
        w.close()


def test_two_cards_with_one_uid_share_no_record(world: World) -> None:
    world.put_card(world.alice, f"/{world.alice}/contacts/one.vcf", phone_card("same-uid", "First", "Copy"))
    # Radicale refuses a second card with a taken UID over HTTP; a lenient server (or a client
    # syncing files into the store) holds two: written into Radicale's store directly
    store = world.radicale.root / "collections" / "collection-root" / world.alice / "contacts"
    (store / "two.vcf").write_text(phone_card("same-uid", "Second", "Copy"), newline="")
    assert len(world.cards(world.alice)) == 2
    out = sync(world)
    assert "has the UID of" in out
    (rec,) = world.crm_contacts(world.alice)
    pim = Ledger(world.home.config().db_url(world.home.config().ledger.url))
    try:
        first = [(link.href, link.crm_id) for link in pim.pim().links(f"{world.alice}-contacts")]
        sync(world)
        sync(world)
        assert [(link.href, link.crm_id) for link in pim.pim().links(f"{world.alice}-contacts")] == first
    finally:
        pim.close()
    assert len(first) == 1 and first[0][1] == rec.id
    assert len(world.crm_contacts(world.alice)) == 1 and len(world.cards(world.alice)) == 2


class Crash(BaseException):
    """Stands for the process dying mid-round."""


def test_a_rev_from_the_future_counts_from_when_the_sync_first_saw_the_card(world: World) -> None:
    rec = world.add_contact(world.alice, "r1", first_name="Rev", last_name="Card", title="Clerk")
    sync(world)
    (href,) = world.cards(world.alice)
    etag, text = world.card_text(world.alice, href)
    world.put_card(world.alice, href, edited(text, title="Card title", rev="20991231T000000Z"), etag)

    def crash(step: str) -> None:
        if step == "update_crm:before":
            raise Crash(step)

    with pytest.raises(Crash):  # the round sees the card, then the process dies
        sync_all(world.home.config(), checkpoint=crash)
    world.edit_contact(rec.id, title="CRM title")  # edited in the CRM after the sync saw the card
    sync(world)
    now = world.contacts.get_contact(rec.id)
    assert now is not None and now.fields.title == "CRM title"
    (_, card) = next(iter(world.cards(world.alice).values()))
    assert card.fields.title == "CRM title"
