"""The three-way merge of one contact: the CRM's fields and the card's against the snapshot
of the last sync, field by field.

A field changed on one side only takes that side's value; changed on both sides to different
values, it is a conflict: the side whose change is newer wins (the CRM's feed time against the
card's REV, or the time the sync saw the card change when it has none) and the conflict is
returned, with both values, for the ledger to list. Without a snapshot (a link made after a
crash, before its snapshot was saved) the CRM's non-empty values win and the card fills the
rest: no conflict can be told then.

A list field (`emails`) merges by member, not whole: an address added on either side is
kept, one removed on either side goes (the mail pipeline adds addresses to CRM contacts as
mail comes in; a person adds one on the phone: both stay, and neither is a conflict).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.crm.sync import CONTACT_FIELDS, ContactFields


class Side(StrEnum):
    CRM = "crm"
    CARD = "card"


@dataclass(frozen=True)
class FieldConflict:
    field: str
    crm_value: Any
    card_value: Any
    winner: Side


@dataclass(frozen=True)
class Merged:
    fields: ContactFields
    conflicts: tuple[FieldConflict, ...] = ()


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else (value or "")


def _merge_members(was: tuple[str, ...], a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Members of `a` then the new ones of `b`, less those either side removed (compared
    case-insensitively, as addresses are)."""
    key = str.casefold
    base, in_a, in_b = {key(x) for x in was}, {key(x) for x in a}, {key(x) for x in b}
    gone = (base - in_a) | (base - in_b)
    out: dict[str, str] = {}
    for item in (*a, *b):
        if key(item) not in gone:
            out.setdefault(key(item), item)
    return tuple(out.values())


def merge(base: dict[str, Any] | None, crm: ContactFields, card: ContactFields, crm_at: float, card_at: float) -> Merged:
    ours, theirs = crm.as_dict(), card.as_dict()
    out: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    for name in CONTACT_FIELDS:
        a, b = _norm(ours[name]), _norm(theirs[name])
        if a == b:
            out[name] = a
            continue
        if base is None:
            out[name] = a if a else b
            continue
        was = _norm(base.get(name, ""))
        if isinstance(a, tuple):
            out[name] = _merge_members(was if isinstance(was, tuple) else (), a, b)
            continue
        if a == was:
            out[name] = b
        elif b == was:
            out[name] = a
        else:
            winner = Side.CARD if card_at > crm_at else Side.CRM
            out[name] = b if winner is Side.CARD else a
            conflicts.append(FieldConflict(name, ours[name], theirs[name], winner))
    return Merged(ContactFields.from_dict(out), tuple(conflicts))
