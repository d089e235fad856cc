"""The embedded CRM's change feed and contact read/write for the sync (migration 0006,
gateway/crm/sql_contacts.py), on SQLite and PostgreSQL: triggers see every writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from gateway.crm.sync import ContactFields, ContactSync
from tests.crm.sql_backends import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlConnector]:
    with database_url(request.param, tmp_path) as url, closing(SqlConnector(url)) as c:
        yield c


def sql(crm: SqlConnector, statement: str, **params: object) -> None:
    """Plain SQL in a transaction of its own, as another program would write."""
    with crm._engine.connect() as conn, conn.begin():
        conn.execute(sa.text(statement), params)


def test_every_writer_is_in_the_feed_and_a_delete_is_a_tombstone(crm: SqlConnector) -> None:
    feed: ContactSync = crm.contact_sync()
    assert isinstance(feed, ContactSync)
    assert feed.changes_since(0) == ([], 0)

    made = crm.create(  # the mail pipeline's create
        "contact", PartyData("contact", emails=("a@x.example",), first_name="A", owner="u1")
    )
    synced = feed.create_contact(ContactFields(first_name="B", title="Boss"), "u2", key="card-1")
    changes, v1 = feed.changes_since(0)
    assert [(c.id, c.owner, c.deleted) for c in changes] == [(made.id, "u1", False), (synced.id, "u2", False)]

    sql(crm, "UPDATE contacts SET owner = 'u3' WHERE id = :id", id=int(made.id))
    crm.add_email_address(made, "second@x.example")  # an address changes its contact
    sql(crm, "DELETE FROM contacts WHERE id = :id", id=int(synced.id))
    changes, v2 = feed.changes_since(v1)
    assert v2 > v1
    assert [(c.id, c.owner, c.deleted) for c in changes] == [(made.id, "u3", False), (synced.id, "u2", True)]
    assert feed.changes_since(v2) == ([], v2)
    # an account's write is no contact's change
    sql(
        crm,
        "INSERT INTO accounts (name, domain, owner, fields, created_by_gateway, created_at) "
        "VALUES ('X', 'x.example', '', '{}', false, CURRENT_TIMESTAMP)",
    )
    assert feed.changes_since(v2) == ([], v2)


def test_a_renamed_account_or_manager_changes_the_contacts_that_show_its_name(crm: SqlConnector) -> None:
    feed = crm.contact_sync()
    boss = feed.create_contact(ContactFields(first_name="Big", last_name="Boss"), "u1", key="boss")
    staff = feed.create_contact(ContactFields(first_name="Staff", organization="Old Name", manager="Big Boss"), "u2", key="staff")
    _, v = feed.changes_since(0)
    sql(crm, "UPDATE accounts SET name = 'New Name'")
    changes, v = feed.changes_since(v)
    assert [c.id for c in changes] == [staff.id]
    sql(crm, "UPDATE accounts SET domain = 'x.example'")  # not a name a card shows
    assert feed.changes_since(v) == ([], v)

    feed.update_contact(boss.id, ContactFields(first_name="Bigger", last_name="Boss"))
    changes, v = feed.changes_since(v)
    assert sorted(c.id for c in changes) == sorted([boss.id, staff.id])
    now = feed.get_contact(staff.id)
    assert now is not None and (now.fields.organization, now.fields.manager) == ("New Name", "Bigger Boss")


def test_contacts_are_written_whole_and_created_once_per_key(crm: SqlConnector) -> None:
    feed = crm.contact_sync()
    boss = feed.create_contact(ContactFields(first_name="Big", last_name="Boss"), "u1", key="k-boss")
    data = ContactFields(
        first_name="Ada",
        last_name="L",
        title="Analyst",
        organization="Engines Ltd",
        emails=("ada@x.example", "ADA@x.example", "ada2@x.example"),
        phone_work="+1",
        phone_mobile="+2",
        street="1 Main St",
        city="London",
        region="LDN",
        postal_code="N1",
        country="UK",
        manager="Big Boss",
    )
    first = feed.create_contact(data, "u1", key="k-ada")
    again = feed.create_contact(ContactFields(first_name="Other"), "u1", key="k-ada")  # a replay
    assert again.id == first.id and again.fields == first.fields
    assert first.fields == ContactFields(**{**data.as_dict(), "emails": ("ada@x.example", "ada2@x.example")})
    assert crm.dump()["accounts"][0]["name"] == "Engines Ltd"

    changed = feed.update_contact(first.id, ContactFields(first_name="Ada", manager="Nobody Known", organization="engines ltd"))
    assert (changed.fields.manager, changed.fields.organization, changed.fields.emails) == ("", "Engines Ltd", ())
    assert len(crm.dump()["accounts"]) == 1  # the account found again, case-insensitively
    feed.delete_contact(boss.id)
    feed.delete_contact(boss.id)  # gone already: no error
    assert feed.get_contact(boss.id) is None
