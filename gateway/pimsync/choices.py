"""A person's choice on a listed conflict (`keep: crm|mailbox`), applied at the start of its
book's next round.

The kept value is written to the CRM record through the connector's `update_contact`, the
call the round itself makes; the round that follows finds the record changed against the
link's snapshot and carries the value to the card by its normal merge (CRM changed, card
as the snapshot: the CRM's value goes to the card). So there is one write path to each side.
A field that changed again since the conflict (its value is no longer the winner's) keeps
its newer value: the choice is `superseded`, not applied over a later edit.
"""

from __future__ import annotations

from typing import Any

from gateway.crm.sync import ContactFields, ContactSync
from gateway.ledger.pim import ConflictState, PimLedger
from gateway.mailboxes.carddav.config import AddressBookConfig
from gateway.pimsync.merge import Side


def _same(a: Any, b: Any) -> bool:
    norm = lambda v: tuple(v) if isinstance(v, list | tuple) else (v or "")  # noqa: E731
    return bool(norm(a) == norm(b))


def apply_choices(book: AddressBookConfig, crm: ContactSync, pim: PimLedger) -> int:
    """Apply this book's chosen values to the CRM; how many were applied."""
    applied = 0
    for c in pim.chosen(book.name):
        rec = crm.get_contact(c.crm_id)
        if rec is None or rec.owner != book.crm_user:  # deleted or gone to another book meanwhile
            pim.settle(c.id, ConflictState.SUPERSEDED)
            continue
        now = rec.fields.as_dict()
        won = c.crm_value if c.winner == Side.CRM else c.card_value
        kept = c.crm_value if c.kept == Side.CRM else c.card_value
        if c.field in now and _same(now[c.field], kept):  # written before a crash, not yet settled
            pim.settle(c.id, ConflictState.APPLIED)
            continue
        if c.field not in now or not _same(now[c.field], won):
            pim.settle(c.id, ConflictState.SUPERSEDED)
            continue
        crm.update_contact(rec.id, ContactFields.from_dict({**now, c.field: kept}))
        pim.settle(c.id, ConflictState.APPLIED)
        applied += 1
    return applied
