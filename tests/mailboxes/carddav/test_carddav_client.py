"""The CardDAV client (gateway/mailboxes/carddav/client.py) against a real Radicale: changes
by sync-token, the PROPFIND listing a server without sync-collection gets, a forgotten token,
conditional writes."""

from __future__ import annotations

import pytest

from gateway.mailboxes.carddav.client import CardDavClient, Stale
from gateway.mailboxes.carddav.config import AddressBookConfig
from tests.pimsync.radicale_server import PASSWORD, Radicale

CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEND:VCARD\r\n"


def client(radicale: Radicale, user: str) -> CardDavClient:
    url = radicale.make_addressbook(user)
    return CardDavClient(AddressBookConfig(name=user, url=url, username=user, password=PASSWORD, crm_user=user))


def test_changes_by_token_and_by_listing_agree(radicale: Radicale) -> None:
    with client(radicale, "dav1") as book:
        first = book.changes("")
        assert first.full and first.changed == {} and first.token
        a, b = book.href_for("a.vcf"), book.href_for("b.vcf")
        etag_a = book.put(a, CARD.format(uid="a", name="A"))
        etag_b = book.put(b, CARD.format(uid="b", name="B"))
        assert etag_a and etag_b

        since = book.changes(first.token)
        assert not since.full and since.changed == {a: etag_a, b: etag_b} and not since.deleted
        assert book._listing().changed == {a: etag_a, b: etag_b}  # what a server without sync-collection gives

        book.delete(b, etag_b)
        later = book.changes(since.token)
        assert later.deleted == {b} and later.changed == {}
        assert book.changes("http://radicale.org/ns/sync/forgotten").full  # a token the server does not know

        cards = book.get_many([a, b])
        assert list(cards) == [a] and "FN:A" in cards[a].text and cards[a].etag == etag_a


def test_writes_are_conditional(radicale: Radicale) -> None:
    with client(radicale, "dav2") as book:
        href = book.href_for("c.vcf")
        etag = book.put(href, CARD.format(uid="c", name="C"))
        assert book.put(href, CARD.format(uid="c", name="C2")) is None  # create only: taken
        newer = book.put(href, CARD.format(uid="c", name="C3"), etag=etag)
        assert newer and newer != etag
        with pytest.raises(Stale):
            book.put(href, CARD.format(uid="c", name="C4"), etag=etag)  # someone changed it since
        with pytest.raises(Stale):
            book.delete(href, etag)
        book.delete(href, newer)
        book.delete(href)  # gone already: no error
        assert book.get(href) is None
