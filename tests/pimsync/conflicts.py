"""Conflicts made the way people make them: a contact synced, then one field edited in the CRM
and, later, on the phone (the card's REV says so), then a round: the card's value wins and
the conflict is listed. And the people who may sign in to see them."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from gateway.admin.access import hash_password
from gateway.ledger.pim import Conflict
from tests.pimsync.world import World, edited

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Made:
    crm_id: str
    href: str


def sync(w: World) -> str:
    proc = w.home.cli("pimsync")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def listed(w: World, book: str | None = None) -> list[Conflict]:
    """The ledger's conflicts (of one book), as `pimsync conflicts` reads them."""
    ledger = w.home.ledger()
    try:
        return ledger.pim().conflicts(book)
    finally:
        ledger.close()


def with_people(w: World, admin: str = "root") -> None:
    """An admin, and each book's user signing in with their address (their CRM user)."""
    cfg = yaml.safe_load(w.home.config_path.read_text())
    hashed = hash_password(PASSWORD)
    people = [{"name": admin, "password_hash": hashed, "role": "admin", "addresses": []}]
    people += [{"name": user, "password_hash": hashed, "role": "user", "addresses": [w.owner(user)]} for user in (w.alice, w.bob)]
    cfg["web"] = {"listen": "127.0.0.1:8025", "users": people}
    w.home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def title_conflict(w: World, user: str, key: str) -> Made:
    """The CRM says "Reader", the phone (later) "Professor": the phone's value kept."""
    rec = w.add_contact(user, key, first_name="Alan", last_name=key.title(), title="Fellow")
    sync(w)
    href = next(h for h, (_, c) in w.cards(user).items() if c.fields.last_name == key.title())
    etag, text = w.card_text(user, href)
    w.edit_contact(rec.id, title="Reader")
    w.put_card(user, href, edited(text, title="Professor", rev="20990101T000000Z"), etag)
    assert "1 conflicts" in sync(w)
    return Made(rec.id, href)
