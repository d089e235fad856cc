"""The CardDAV client (gateway/mailboxes/carddav/client.py) against a real Radicale: changes
by sync-token, the PROPFIND listing a server without sync-collection gets, a forgotten token,
conditional writes."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

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


def _page(members: list[tuple[str, str]], token: str, truncated: bool) -> str:
    """A sync-collection answer shaped as RFC 6578 3.6's example of a truncated one: a 507
    response for the collection itself, with absolute hrefs."""
    rows = "".join(
        f"<D:response><D:href>https://dav.example/u/my%20book/{name}</D:href><D:propstat><D:prop>"
        f"<D:getetag>{etag}</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        for name, etag in members
    )
    cut = (
        "<D:response><D:href>https://dav.example/u/my%20book/</D:href><D:status>HTTP/1.1 507 Insufficient Storage"
        "</D:status><D:error><D:number-of-matches-within-limits/></D:error></D:response>"
    )
    return f'<?xml version="1.0"?><D:multistatus xmlns:D="DAV:">{cut if truncated else ""}{rows}<D:sync-token>{token}</D:sync-token></D:multistatus>'


def test_a_truncated_sync_listing_is_read_to_its_end() -> None:
    """Radicale never truncates, so this server is a test double: it answers the
    sync-collection REPORT in pages as RFC 6578 section 3.6 describes (a 507 for the request
    URI, a token to ask for the rest)."""
    pages = {
        "": _page([("a.vcf", '"1"'), ("b.vcf", '"2"')], "tok-1", truncated=True),
        "tok-1": _page([("c%20d.vcf", '"3"')], "tok-2", truncated=False),
    }
    asked: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        token = etree.fromstring(request.content).findtext("{DAV:}sync-token") or ""
        asked.append(token)
        return httpx.Response(207, content=pages[token].encode())

    book = CardDavClient(AddressBookConfig(name="paged", url="https://dav.example/u/my%20book/", crm_user="u"))
    book._http = httpx.Client(transport=httpx.MockTransport(server))
    with book:
        listing = book.changes("")
    assert asked == ["", "tok-1"]
    assert listing.full and listing.token == "tok-2"
    assert listing.changed == {"/u/my book/a.vcf": '"1"', "/u/my book/b.vcf": '"2"', "/u/my book/c d.vcf": '"3"'}
