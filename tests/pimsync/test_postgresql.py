"""The contact sync with the embedded CRM and the ledger on PostgreSQL: the triggers, the
feed and the ledger's sync tables there, against the same real Radicale."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crm.sql_backends import postgres_url
from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World, edited

pytestmark = pytest.mark.postgres


def test_round_trip_plain_sql_and_reassignment_on_postgresql(tmp_path: Path, radicale: Radicale, users: tuple[str, str]) -> None:
    with postgres_url() as crm_url, postgres_url() as ledger_url:
        w = World(tmp_path, radicale, *users, crm_url=crm_url, ledger_url=ledger_url)
        try:
            rec = w.add_contact(w.alice, "pg1", first_name="Pat", last_name="Gres", title="DBA")
            w.sql(
                "INSERT INTO contacts (owner, fields, created_by_gateway, created_at, first_name, last_name) "
                "VALUES (?, '{}', false, now(), 'Plain', 'Insert')",
                w.owner(w.alice),
            )
            proc = w.home.cli("pimsync")
            assert proc.returncode == 0, proc.stderr
            assert sorted(c.fields.first_name for _, c in w.cards(w.alice).values()) == ["Pat", "Plain"]

            href = next(h for h, (_, c) in w.cards(w.alice).items() if c.fields.first_name == "Pat")
            etag, text = w.card_text(w.alice, href)
            w.put_card(w.alice, href, edited(text, title="Chief DBA"), etag)
            w.sql("UPDATE contacts SET owner = ? WHERE first_name = 'Plain'", w.owner(w.bob))
            proc = w.home.cli("pimsync")
            assert proc.returncode == 0, proc.stderr
            now = w.contacts.get_contact(rec.id)
            assert now is not None and now.fields.title == "Chief DBA"
            assert [c.fields.first_name for _, c in w.cards(w.alice).values()] == ["Pat"]
            assert [c.fields.first_name for _, c in w.cards(w.bob).values()] == ["Plain"]
        finally:
            w.close()
