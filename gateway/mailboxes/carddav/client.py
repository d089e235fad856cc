"""A small CardDAV client: what the contact sync needs of an address book, on httpx.

- `changes(token)`: sync-collection REPORT (RFC 6578) from a sync-token; a server without it
  (or a token it no longer knows) gives a full listing by PROPFIND with etags, and the result
  says so (`full`): the caller then compares with what it knows.
- `get_many(hrefs)`: addressbook-multiget (RFC 6352 8.7), a hundred cards a request.
- `put(href, text, etag=None)`: without an etag, `If-None-Match: *` (create only: a replay of a
  create on the same href cannot make a second card); with one, `If-Match` (no lost update).
- `delete(href, etag)`.

Errors leave as Retryable (network, 5xx, 429, a card changed meanwhile: `Stale`) or Permanent
(refused credentials, a missing collection, what the server refuses of a card).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx
from lxml import etree

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.carddav.config import AddressBookConfig

NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:carddav"}
_SYNC = """<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>
<D:prop><D:getetag/></D:prop></D:sync-collection>"""
_PROPFIND = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>"""
_MULTIGET = """<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
<D:prop><D:getetag/><C:address-data/></D:prop>{hrefs}</C:addressbook-multiget>"""
MULTIGET_BATCH = 100
MAX_PAGES = 10_000  # of a truncated sync-collection answer, before taking the server as looping


class Stale(Retryable):
    """The card changed on the server since it was read (412): read it again and merge."""


@dataclass(frozen=True)
class Card:
    href: str  # the decoded path on the server (CardDavClient.norm)
    etag: str
    text: str


@dataclass(frozen=True)
class Changes:
    token: str  # to ask from next time ("" when the server has no sync-token)
    changed: dict[str, str] = field(default_factory=dict)  # href → etag
    deleted: frozenset[str] = frozenset()
    full: bool = False  # a full listing: every card is in `changed`; absent ones are gone


class CardDavClient:
    """One address book; `with CardDavClient(config) as book:` closes its connections."""

    def __init__(self, config: AddressBookConfig) -> None:
        self.url = config.url
        self.path = self.norm(config.url)
        auth = httpx.BasicAuth(config.username, config.password) if config.username else None
        self._http = httpx.Client(auth=auth, timeout=config.timeout, verify=config.verify_tls)

    def __enter__(self) -> CardDavClient:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- requests ----------------------------------------------------------------------

    def _send(self, method: str, href: str, body: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            r = self._http.request(method, urljoin(self.url, quote(href)), content=body, headers=headers)
        except httpx.TransportError as e:
            raise Retryable(f"address book {self.url}: {e.__class__.__name__}: {e}") from e
        if r.status_code in (429, 502, 503, 504) or r.status_code >= 500:
            raise Retryable(f"address book {self.url}: {method} {href}: HTTP {r.status_code}")
        if r.status_code in (401, 403) and method not in ("REPORT",):
            raise Permanent(f"address book {self.url}: {method} {href}: HTTP {r.status_code} (credentials or rights)")
        return r

    def _xml(self, method: str, href: str, body: str, depth: str) -> tuple[int, etree._Element | None]:
        headers = {"Content-Type": "application/xml; charset=utf-8", "Depth": depth}
        r = self._send(method, href, body, headers)
        if r.status_code != 207:
            return r.status_code, None
        return 207, etree.fromstring(r.content, parser=etree.XMLParser(resolve_entities=False, no_network=True))

    # -- listing changes ---------------------------------------------------------------

    def changes(self, token: str) -> Changes:
        """What changed since `token` ("" : everything, as a full listing). A server may answer
        in pages (RFC 6578 3.6: a 507 for the collection itself marks a truncated answer, whose
        token asks for the rest): the pages are asked for until the listing is complete, as a
        page taken for the whole book would read every card beyond it as deleted."""
        status, doc = self._xml("REPORT", self.path, _SYNC.format(token=_escape(token)), "1")
        if doc is None and token:  # a token the server forgot (403/409 valid-sync-token): start over
            status, doc = self._xml("REPORT", self.path, _SYNC.format(token=""), "1")
            token = ""
        if doc is None:
            if status in (400, 403, 404, 405, 501) or status == 409:
                return self._listing()
            raise Permanent(f"address book {self.url}: sync-collection: HTTP {status}")
        changed: dict[str, str] = {}
        deleted: set[str] = set()
        for _page in range(MAX_PAGES):
            for href, etag, ok in self._responses(doc):
                if ok:
                    changed[href] = etag
                    deleted.discard(href)
                else:
                    deleted.add(href)
                    changed.pop(href, None)
            new_token = doc.findtext("D:sync-token", default="", namespaces=NS)
            if not self._truncated(doc):
                return Changes(new_token, changed, frozenset(deleted), full=not token)
            status, doc = self._xml("REPORT", self.path, _SYNC.format(token=_escape(new_token)), "1")
            if doc is None:
                raise Retryable(f"address book {self.url}: sync-collection (next page): HTTP {status}")
        raise Retryable(f"address book {self.url}: sync-collection: still truncated after {MAX_PAGES} pages")

    def _truncated(self, doc: etree._Element) -> bool:
        """Whether the answer has the 507 response for the collection itself (RFC 6578 3.6)."""
        for resp in doc.findall("D:response", NS):
            raw = resp.findtext("D:href", default="", namespaces=NS)
            status = resp.findtext("D:status", default="", namespaces=NS)
            if raw and self.norm(raw).rstrip("/") == self.path.rstrip("/") and " 507" in status:
                return True
        return False

    def _listing(self) -> Changes:
        status, doc = self._xml("PROPFIND", self.path, _PROPFIND, "1")
        if doc is None:
            raise Permanent(f"address book {self.url}: PROPFIND: HTTP {status} (is this an address book collection?)")
        changed = {href: etag for href, etag, ok in self._responses(doc) if ok and etag}
        return Changes("", changed, frozenset(), full=True)

    def _responses(self, doc: etree._Element) -> Iterator[tuple[str, str, bool]]:
        """(href, etag, present) of each member of the collection (not the collection itself)."""
        for resp in doc.findall("D:response", NS):
            raw = resp.findtext("D:href", default="", namespaces=NS)
            href = self.norm(raw) if raw else ""
            if not href or href.rstrip("/") == self.path.rstrip("/"):
                continue
            status = resp.findtext("D:status", default="", namespaces=NS)
            if " 404" in status:
                yield href, "", False
                continue
            if resp.find(".//D:resourcetype/D:collection", NS) is not None:
                continue
            etag = resp.findtext(".//D:propstat/D:prop/D:getetag", default="", namespaces=NS)
            yield href, etag, True

    # -- cards -------------------------------------------------------------------------

    def get_many(self, hrefs: Iterable[str]) -> dict[str, Card]:
        """The cards at these hrefs that exist (a gone one is left out)."""
        wanted = list(dict.fromkeys(hrefs))
        found: dict[str, Card] = {}
        for i in range(0, len(wanted), MULTIGET_BATCH):
            batch = "".join(f"<D:href>{_escape(quote(h))}</D:href>" for h in wanted[i : i + MULTIGET_BATCH])
            status, doc = self._xml("REPORT", self.path, _MULTIGET.format(hrefs=batch), "1")
            if doc is None:
                raise Permanent(f"address book {self.url}: addressbook-multiget: HTTP {status}")
            for resp in doc.findall("D:response", NS):
                href = self.norm(resp.findtext("D:href", default="", namespaces=NS))
                data = resp.findtext(".//C:address-data", default=None, namespaces=NS)
                if data is not None:
                    etag = resp.findtext(".//D:getetag", default="", namespaces=NS)
                    found[href] = Card(href, etag, data)
        return found

    def get(self, href: str) -> Card | None:
        r = self._send("GET", href)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise Permanent(f"address book {self.url}: GET {href}: HTTP {r.status_code}")
        return Card(self.norm(str(r.url)), r.headers.get("ETag", ""), r.text)

    def put(self, href: str, text: str, etag: str | None = None) -> str | None:
        """Write the card; its new etag (None: the server did not say). Without `etag` only a
        create: None back too when the href is taken already (412 on `If-None-Match: *`)."""
        headers = {"Content-Type": "text/vcard; charset=utf-8"}
        headers.update({"If-Match": etag} if etag else {"If-None-Match": "*"})
        r = self._send("PUT", href, text, headers)
        if r.status_code == 412:
            if etag:
                raise Stale(f"address book {self.url}: {href} changed meanwhile")
            return None
        if r.status_code not in (200, 201, 204):
            raise Permanent(f"address book {self.url}: PUT {href}: HTTP {r.status_code}: {r.text[:200]}")
        return r.headers.get("ETag") or ""

    def delete(self, href: str, etag: str = "") -> None:
        r = self._send("DELETE", href, headers={"If-Match": etag} if etag else None)
        if r.status_code == 412:
            raise Stale(f"address book {self.url}: {href} changed meanwhile")
        if r.status_code not in (200, 204, 404):
            raise Permanent(f"address book {self.url}: DELETE {href}: HTTP {r.status_code}")

    def href_for(self, name: str) -> str:
        """The path of a member named `name` in this collection."""
        return self.path + name

    def norm(self, href: str) -> str:
        """One spelling of an href, whatever the server or the config wrote: the decoded path.
        Servers answer with absolute URLs or paths, percent-encoded or not; compared raw, the
        same card would look new (and its old link gone) every round."""
        return unquote(urlsplit(urljoin(self.url, href)).path)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
