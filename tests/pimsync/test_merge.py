"""The three-way merge (gateway/pimsync/merge.py), pure: one side's change wins, both sides'
different changes are a conflict the newer wins, list members merge."""

from __future__ import annotations

from gateway.crm.sync import ContactFields
from gateway.pimsync.merge import FieldConflict, Side, merge

BASE = ContactFields(first_name="Ann", title="Buyer", city="Oslo", emails=("ann@a.example", "old@a.example"))


def test_one_sided_changes_merge_and_both_sided_ones_are_conflicts_the_newer_wins() -> None:
    crm = ContactFields(**{**BASE.as_dict(), "city": "Bergen", "title": "Head buyer", "emails": BASE.emails})
    card = ContactFields(**{**BASE.as_dict(), "phone_work": "+47 1", "title": "Chief buyer", "emails": BASE.emails})
    newer_card = merge(BASE.as_dict(), crm, card, crm_at=100.0, card_at=200.0)
    assert (newer_card.fields.city, newer_card.fields.phone_work, newer_card.fields.title) == ("Bergen", "+47 1", "Chief buyer")
    assert newer_card.conflicts == (FieldConflict("title", "Head buyer", "Chief buyer", Side.CARD),)
    newer_crm = merge(BASE.as_dict(), crm, card, crm_at=300.0, card_at=200.0)
    assert newer_crm.fields.title == "Head buyer" and newer_crm.conflicts[0].winner is Side.CRM


def test_addresses_merge_by_member() -> None:
    crm = ContactFields(**{**BASE.as_dict(), "emails": ("ann@a.example", "old@a.example", "from-mail@a.example")})
    card = ContactFields(**{**BASE.as_dict(), "emails": ("ANN@a.example", "phone@a.example")})  # old one removed
    merged = merge(BASE.as_dict(), crm, card, 0.0, 0.0)
    assert merged.fields.emails == ("ann@a.example", "from-mail@a.example", "phone@a.example")
    assert merged.conflicts == ()


def test_without_a_snapshot_the_crm_fills_first_and_nothing_is_a_conflict() -> None:
    crm = ContactFields(first_name="Ann", city="")
    card = ContactFields(first_name="Anne", city="Oslo")
    merged = merge(None, crm, card, 0.0, 0.0)
    assert (merged.fields.first_name, merged.fields.city, merged.conflicts) == ("Ann", "Oslo", ())
