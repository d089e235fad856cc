"""`crm-gateway pimsync` with a real trytond as the CRM and a real Radicale as the address
books: a party made in Tryton reaches its owner's book, a card edit reaches the party, a
card made on the phone becomes a party once, and a party deleted in Tryton leaves the book."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.crm.sync import ContactSync, contact_sync
from gateway.crm.tryton import TrytonConnector
from gateway.crm.tryton_contacts import OWNER_PREFIX
from tests.crm.conftest import TRYTON_TEST_TIMEOUT, tryton  # noqa: F401  (the fixture)
from tests.crm.test_tryton_contract import connector_for
from tests.crm.tryton_server import TrytonServer
from tests.fixtures import Home
from tests.pimsync.radicale_server import PASSWORD, Radicale
from tests.pimsync.world import PROPFIND, _hrefs, edited

pytestmark = pytest.mark.timeout(TRYTON_TEST_TIMEOUT)


class TrytonWorld:
    def __init__(self, root: Path, radicale: Radicale, server: TrytonServer, user: str) -> None:
        self.radicale, self.tryton, self.user = radicale, server, user
        self.owner = f"{user}@example.com"
        book = {
            "name": "book",
            "url": radicale.make_addressbook(user),
            "username": user,
            "password": PASSWORD,
            "crm_user": self.owner,
        }
        crm = {
            "backend": "tryton",
            "url": server.url,
            "database": server.database,
            "username": server.username,
            "password": server.password,
        }
        self.home = Home(root, {"crm": crm, "pimsync": {"addressbooks": [book]}})
        self.connector: TrytonConnector = connector_for(server)
        self.contacts: ContactSync = contact_sync(self.connector)

    def sync(self) -> str:
        proc = self.home.cli("pimsync")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def cards(self) -> dict[str, tuple[str, str]]:
        """href → (etag, text) of every card in the book."""
        with self.radicale.client(self.user) as c:
            r = c.request("PROPFIND", f"/{self.user}/contacts/", content=PROPFIND, headers={"Depth": "1"})
            out = {}
            for href in _hrefs(r.text):
                if href.rstrip("/") != f"/{self.user}/contacts":
                    got = c.get(href)
                    out[href] = (got.headers["ETag"], got.text)
        return out


@pytest.fixture
def tw(tmp_path: Path, radicale: Radicale, users: tuple[str, str], tryton: TrytonServer) -> Iterator[TrytonWorld]:  # noqa: F811
    w = TrytonWorld(tmp_path, radicale, tryton, users[0])
    yield w
    w.connector.close()


def test_a_party_made_in_tryton_reaches_the_book_and_a_card_edit_reaches_tryton(tw: TrytonWorld) -> None:
    rpc = tw.tryton.rpc()
    [cat] = rpc.call("model.party.category.create", [{"name": OWNER_PREFIX + tw.owner}])
    [pid] = rpc.call(
        "model.party.party.create",
        [
            {
                "name": "Ada Lovelace",
                "categories": [["add", [cat]]],
                "contact_mechanisms": [["create", [{"type": "email", "value": "ada@engines.example"}]]],
            }
        ],
    )
    assert "book: cards 1 created" in tw.sync()
    ((href, (etag, text)),) = tw.cards().items()
    assert "FN:Ada Lovelace" in text and "ada@engines.example" in text

    with tw.radicale.client(tw.user) as c:
        r = c.put(
            href,
            content=edited(text, title="Countess", tel="+44 20 9999"),
            headers={"If-Match": etag, "Content-Type": "text/vcard"},
        )
        assert r.status_code in (201, 204)
    tw.sync()
    rec = tw.contacts.get_contact(str(pid))
    assert rec is not None
    assert (rec.fields.title, rec.fields.phone_work, rec.fields.emails) == ("Countess", "+44 20 9999", ("ada@engines.example",))
    mechs = rpc.call("model.party.contact_mechanism.search_read", [("party", "=", pid)], 0, None, None, ["type", "value"])
    assert {(m["type"], m["value"]) for m in mechs} == {("email", "ada@engines.example"), ("phone", "+44 20 9999")}

    # deleted in Tryton (no tombstone there): the card leaves the book
    rpc.call("model.party.party.delete", [pid])
    assert "cards 0 created, 0 updated, 1 removed" in tw.sync()
    assert tw.cards() == {}


def test_a_card_made_on_the_phone_becomes_one_party_of_the_book_user(tw: TrytonWorld) -> None:
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:phone-made-1\r\nFN:Grace Hopper\r\nN:Hopper;Grace;;;\r\n"
        "EMAIL;TYPE=INTERNET:grace@navy.example\r\nORG:Navy\r\nTEL;TYPE=CELL:+1 555 0100\r\nEND:VCARD\r\n"
    )
    with tw.radicale.client(tw.user) as c:
        assert c.put(f"/{tw.user}/contacts/grace.vcf", content=card, headers={"Content-Type": "text/vcard"}).status_code == 201
    tw.sync()
    tw.sync()  # nothing comes back a second time
    rpc = tw.tryton.rpc()
    parties = rpc.call("model.party.party.search_read", [("name", "=", "Grace Hopper")], 0, None, None, ["id"])
    assert len(parties) == 1
    rec = tw.contacts.get_contact(str(parties[0]["id"]))
    assert rec is not None and rec.owner == tw.owner
    assert (rec.fields.organization, rec.fields.phone_mobile, rec.fields.emails) == (
        "Navy",
        "+1 555 0100",
        ("grace@navy.example",),
    )
    assert len(tw.cards()) == 1
