"""The contact-sync contract (gateway/crm/sync.py) every connector that offers `contact_sync()`
keeps: a subclass gives the `store` fixture (the connector's `ContactSync`) and `remove(id)`,
which deletes a contact the way a person in that CRM would.

What is asserted is what the sync relies on: fields read back as written, a create repeated
with its key returns the first record, the feed tells each change with its owner and gives
the same version back when nothing changed, and a delete is told (a tombstone in the feed, or
`GoneCheck.missing` for a CRM that keeps none).
"""

from __future__ import annotations

import pytest

from gateway.crm.sync import ContactFields, ContactSync, GoneCheck
from gateway.errors import Permanent

FULL = ContactFields(
    first_name="Ada",
    last_name="Lovelace",
    title="Analyst",
    organization="Engines Ltd",
    emails=("ada@engines.example", "ada.l@home.example"),
    phone_work="+44 20 7946 0000",
    phone_mobile="+44 7700 900000",
    street="12 St James's Square",
    city="London",
    region="Greater London",
    postal_code="SW1Y 4JH",
    country="United Kingdom",
)


def told_gone(store: ContactSync, version: int, cid: str) -> bool:
    changes, _ = store.changes_since(version)
    if any(c.id == cid and c.deleted for c in changes):
        return True
    return isinstance(store, GoneCheck) and cid in store.missing("contact", [cid])


class ContactSyncContract:
    def remove(self, store: ContactSync, cid: str) -> None:
        store.delete_contact(cid)

    def test_it_is_a_contact_sync(self, store: ContactSync) -> None:
        assert isinstance(store, ContactSync)

    def test_fields_read_back_as_written(self, store: ContactSync) -> None:
        rec = store.create_contact(FULL, "ann", key="card-full")
        assert rec.fields == FULL
        assert rec.owner == "ann"
        again = store.get_contact(rec.id)
        assert again is not None and again.fields == FULL and again.owner == "ann"
        changed = FULL.__class__(**{**FULL.as_dict(), "emails": ("ada@engines.example",), "title": "", "city": "Bath"})
        assert store.update_contact(rec.id, changed).fields == changed

    def test_a_create_repeated_with_its_key_returns_the_first_record(self, store: ContactSync) -> None:
        first = store.create_contact(ContactFields(first_name="Bob", emails=("bob@x.example",)), "ann", key="card-bob")
        second = store.create_contact(ContactFields(first_name="Bob", emails=("bob@x.example",)), "ann", key="card-bob")
        other = store.create_contact(ContactFields(first_name="Bob", emails=("bob@x.example",)), "ann", key="card-bob-2")
        assert second.id == first.id
        assert other.id != first.id

    def test_the_feed_tells_each_change_with_its_owner(self, store: ContactSync) -> None:
        _, v0 = store.changes_since(0)
        a = store.create_contact(ContactFields(first_name="Cy", last_name="One"), "ann", key="card-cy")
        b = store.create_contact(ContactFields(first_name="Di", last_name="Two"), "bea", key="card-di")
        changes, v1 = store.changes_since(v0)
        assert v1 != v0
        told = {c.id: (c.owner, c.deleted) for c in changes}
        assert told[a.id] == ("ann", False) and told[b.id] == ("bea", False)
        _, v_again = store.changes_since(v1)
        assert v_again == v1  # nothing new: the same version back
        store.update_contact(a.id, ContactFields(first_name="Cy", last_name="Uno"))
        changes, v2 = store.changes_since(v1)
        # told; the version may stay where a CRM stamps to the second (Odoo) and the edit came
        # in the same second: its feed tells the records of the cursor's second again
        assert v2 >= v1 and a.id in {c.id for c in changes if not c.deleted}

    def test_a_delete_is_told(self, store: ContactSync) -> None:
        rec = store.create_contact(ContactFields(first_name="Eve"), "ann", key="card-eve")
        _, v = store.changes_since(0)
        self.remove(store, rec.id)
        assert store.get_contact(rec.id) is None
        assert told_gone(store, v, rec.id)
        store.delete_contact(rec.id)  # again: no error

    def test_an_unknown_record_cannot_be_updated(self, store: ContactSync) -> None:
        with pytest.raises(Permanent):
            store.update_contact("987654", ContactFields(first_name="Nobody"))
