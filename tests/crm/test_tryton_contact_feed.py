"""Tryton's contact feed against a real trytond (gateway/crm/tryton_contacts.py): what a
person does in the Tryton client (through its own JSON-RPC, `tryton.rpc()`) is told by the
feed; parties stamped alike are not skipped; a deleted party, of which Tryton keeps no trace,
is found missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.crm.sync import GoneCheck, contact_sync
from gateway.crm.tryton_contacts import OWNER_PREFIX, TrytonContactSync
from tests.crm.test_tryton_contract import connector_for
from tests.crm.tryton_server import TrytonServer


@pytest.fixture
def store(tryton: TrytonServer) -> Iterator[TrytonContactSync]:
    c = connector_for(tryton)
    try:
        s = contact_sync(c)
        assert isinstance(s, TrytonContactSync)
        yield s
    finally:
        c.close()


def owner_category(tryton: TrytonServer, owner: str) -> int:
    [cid] = tryton.rpc().call("model.party.category.create", [{"name": OWNER_PREFIX + owner}])
    return int(cid)


def test_parties_made_and_edited_in_tryton_are_told_with_their_owner(tryton: TrytonServer, store: TrytonContactSync) -> None:
    rpc = tryton.rpc()
    _, v0 = store.changes_since(0)
    cat = owner_category(tryton, "ann@example.com")
    # one create of two parties: one transaction, the same stamp on both
    a, b = rpc.call(
        "model.party.party.create",
        [
            {
                "name": "Ada Lovelace",
                "categories": [["add", [cat]]],
                "contact_mechanisms": [["create", [{"type": "email", "value": "ada@x.example"}]]],
            },
            {"name": "Bob Babbage", "contact_mechanisms": [["create", [{"type": "mobile", "value": "+44 7700 1"}]]]},
        ],
    )
    seen: dict[str, str] = {}
    version = v0
    while True:  # a page of one: the second party, stamped like the first, is not skipped
        changes, new = store.changes_since(version, limit=1)
        seen.update({c.id: c.owner for c in changes})
        if new == version:
            break
        version = new
    assert seen[str(a)] == "ann@example.com" and seen[str(b)] == ""
    rec = store.get_contact(str(a))
    assert rec is not None
    assert (rec.fields.first_name, rec.fields.last_name, rec.fields.emails) == ("Ada", "Lovelace", ("ada@x.example",))
    assert store.get_contact(str(b)).fields.phone_mobile == "+44 7700 1"  # type: ignore[union-attr]

    # a mechanism edited on its own (not through the party) is the party's change
    [mech] = rpc.call("model.party.contact_mechanism.search", [("party", "=", a)], 0, None, None)
    rpc.call("model.party.contact_mechanism.write", [mech], {"value": "ada@new.example"})
    changes, v2 = store.changes_since(version)
    assert v2 > version and str(a) in {c.id for c in changes}
    assert store.get_contact(str(a)).fields.emails == ("ada@new.example",)  # type: ignore[union-attr]

    # deactivated in Tryton: a delete
    rpc.call("model.party.party.write", [b], {"active": False})
    changes, _ = store.changes_since(v2)
    assert [(c.id, c.deleted) for c in changes if c.id == str(b)] == [(str(b), True)]
    assert store.get_contact(str(b)) is None


def test_a_party_deleted_in_tryton_is_found_missing(tryton: TrytonServer, store: TrytonContactSync) -> None:
    assert isinstance(store, GoneCheck)
    rpc = tryton.rpc()
    kept, gone = rpc.call("model.party.party.create", [{"name": "Kept"}, {"name": "Gone"}])
    rpc.call("model.party.party.delete", [gone])
    assert store.missing("contact", [str(kept), str(gone), "not-an-id"]) == {str(gone), "not-an-id"}


def test_the_accounts_of_the_gateway_are_not_contacts(tryton: TrytonServer, store: TrytonContactSync) -> None:
    c = connector_for(tryton)
    try:
        from gateway.crm.base import PartyData

        acct = c.create("account", PartyData("account", name="Engines Ltd", domain="engines.example"))
    finally:
        c.close()
    changes, _ = store.changes_since(0)
    assert acct.id not in {ch.id for ch in changes}
    assert store.get_contact(acct.id) is None
