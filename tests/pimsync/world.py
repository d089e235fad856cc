"""A gateway home whose config syncs two users' Radicale address books, with the reads and
writes a test makes on each side: the CRM through the embedded store (and plain SQL), the
address books through plain HTTP (as a phone or Thunderbird would)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from gateway.crm.sql import SqlConnector
from gateway.crm.sync import ContactFields, SyncContact
from gateway.pimsync.vcard import ParsedCard, parse
from tests.fixtures import Home
from tests.pimsync.radicale_server import PASSWORD, Radicale

PROPFIND = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'


class World:
    def __init__(
        self,
        root: Path,
        radicale: Radicale,
        alice: str,
        bob: str,
        on_card_deleted: str = "unlink",
        crm_url: str | None = None,
        ledger_url: str | None = None,
    ) -> None:
        self.radicale, self.alice, self.bob = radicale, alice, bob
        books = [
            {
                "name": f"{user}-contacts",
                "url": radicale.make_addressbook(user),
                "username": user,
                "password": PASSWORD,
                "crm_user": f"{user}@example.com",
            }
            for user in (alice, bob)
        ]
        extra: dict[str, Any] = {"pimsync": {"on_card_deleted": on_card_deleted, "addressbooks": books}}
        if crm_url:
            extra["crm"] = {"backend": "sql", "url": crm_url}
        if ledger_url:
            extra["ledger"] = {"url": ledger_url}
        self.home = Home(root, extra)
        (root / "var").mkdir(exist_ok=True)
        self.crm_path = root / "var" / "crm.db"
        self.crm = SqlConnector(crm_url or f"sqlite:///{self.crm_path}")
        self.contacts = self.crm.contact_sync()

    def close(self) -> None:
        self.crm.close()

    # -- the CRM -----------------------------------------------------------------------

    def owner(self, user: str) -> str:
        return f"{user}@example.com"

    def add_contact(self, user: str, key: str, **fields: Any) -> SyncContact:
        return self.contacts.create_contact(ContactFields(**fields), self.owner(user), key)

    def edit_contact(self, cid: str, **changes: Any) -> SyncContact:
        rec = self.contacts.get_contact(cid)
        assert rec is not None
        return self.contacts.update_contact(cid, ContactFields.from_dict({**rec.fields.as_dict(), **changes}))

    def sql(self, statement: str, *params: Any) -> list[Any]:
        """Plain SQL on the CRM's database (`?` for parameters), as another program would write it."""
        if self.crm._engine.dialect.name == "postgresql":
            import sqlalchemy as sa

            parts = statement.split("?")
            text = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
            with self.crm._engine.connect() as conn, conn.begin():
                result = conn.execute(sa.text(text), {f"p{i}": v for i, v in enumerate(params)})
                return list(result) if result.returns_rows else []
        with sqlite3.connect(self.crm_path) as db:
            rows = db.execute(statement, params).fetchall()
        db.close()
        return rows

    def crm_contacts(self, user: str) -> list[SyncContact]:
        ids = [r[0] for r in self.sql("SELECT id FROM contacts WHERE owner = ? ORDER BY id", self.owner(user))]
        found = [self.contacts.get_contact(str(i)) for i in ids]
        return [c for c in found if c is not None]

    # -- the address books -------------------------------------------------------------

    def cards(self, user: str) -> dict[str, tuple[str, ParsedCard]]:
        """href → (etag, parsed card) of every card in the user's address book."""
        with self.radicale.client(user) as c:
            r = c.request("PROPFIND", f"/{user}/contacts/", content=PROPFIND, headers={"Depth": "1"})
            assert r.status_code == 207, r.text
            out = {}
            for href in _hrefs(r.text):
                if href.rstrip("/") == f"/{user}/contacts":
                    continue
                got = c.get(href)
                out[href] = (got.headers["ETag"], parse(got.text))
        return out

    def card_text(self, user: str, href: str) -> tuple[str, str]:
        with self.radicale.client(user) as c:
            got = c.get(href)
            return got.headers["ETag"], got.text

    def put_card(self, user: str, href: str, text: str, etag: str | None = None) -> None:
        headers = {"Content-Type": "text/vcard"} | ({"If-Match": etag} if etag else {"If-None-Match": "*"})
        with self.radicale.client(user) as c:
            r = c.put(href, content=text, headers=headers)
            assert r.status_code in (201, 204), (r.status_code, r.text)

    def delete_card(self, user: str, href: str) -> None:
        with self.radicale.client(user) as c:
            assert c.delete(href).status_code in (200, 204)


def _hrefs(xml: str) -> list[str]:
    from urllib.parse import unquote

    from lxml import etree

    doc = etree.fromstring(xml.encode())
    return [unquote(h.text or "") for h in doc.iter("{DAV:}href")]


def edited(text: str, **props: str) -> str:
    """The card text with these properties (lower-case names, `_` for `-`) set to new values."""
    import vobject

    card = vobject.readOne(text)
    for name, value in props.items():
        name = name.replace("_", "-")
        for old in list(card.contents.get(name, [])):
            card.remove(old)
        card.add(name).value = value
    return str(card.serialize())
