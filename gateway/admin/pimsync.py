"""The contact sync's conflicts as people see and settle them: the same functions behind
`pimsync conflicts`, `GET /api/v1/pimsync/conflicts` and the console's "Sync conflicts" page.

A person sees the conflicts of the address books of their own CRM users (an admin: all);
another's conflict is answered as unknown. Keeping a value records the choice; the next round
of the book applies it (gateway/pimsync/choices.py), so no write happens here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.admin.scope import Visibility
from gateway.config import Config
from gateway.errors import NotFound, Permanent
from gateway.ledger.pim import Conflict, PimLedger

# what a person says (`keep: crm|mailbox`) → what the ledger calls the sides
KEEP = {"crm": "crm", "mailbox": "card"}
SIDE_WORD = {"crm": "crm", "card": "mailbox"}


@dataclass(frozen=True)
class ConflictPage:
    conflicts: list[Conflict]
    total: int


def visible_books(config: Config, scope: Visibility | None) -> set[str] | None:
    """The address books whose conflicts this person sees (None: every one)."""
    if scope is None:
        return None
    return {b.name for b in config.addressbooks() if b.crm_user.strip().lower() in scope.crm_users}


def visible_book_docs(docs: list[dict[str, Any]], scope: Visibility | None) -> list[dict[str, Any]]:
    """The status document's address books (`pimsync`) this person sees."""
    if scope is None:
        return docs
    return [b for b in docs if str(b.get("crm_user", "")).strip().lower() in scope.crm_users]


def conflict_page(
    config: Config,
    pim: PimLedger,
    scope: Visibility | None,
    *,
    book: str | None = None,
    open_only: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> ConflictPage:
    books = visible_books(config, scope)
    found = pim.conflicts(book, books=books, open_only=open_only, limit=limit, offset=offset)
    return ConflictPage(found, pim.count_conflicts(book, books=books, open_only=open_only))


def resolve(config: Config, pim: PimLedger, conflict_id: int, keep: str, by: str, scope: Visibility | None) -> Conflict:
    """Keep the CRM's or the mailbox's value of one conflict (NotFound: none the person sees)."""
    side = KEEP.get(keep.strip().lower())
    if side is None:
        raise Permanent(f"keep is `crm` or `mailbox` (got {keep!r})")
    found = pim.conflict(conflict_id)
    books = visible_books(config, scope)
    if found is None or (books is not None and found.book not in books):
        raise NotFound(f"no sync conflict {conflict_id}")
    return pim.choose(conflict_id, side, by)


def outcome(c: Conflict) -> str:
    """In words, what becomes of the conflict."""
    won = SIDE_WORD[c.winner]
    return {
        "open": f"the {won} value was kept (the newer change)",
        "chosen": f"the {SIDE_WORD.get(c.kept or '', '?')} value is applied at the next round",
        "applied": f"the {SIDE_WORD.get(c.kept or '', '?')} value was applied on both sides",
        "seen": f"the {won} value stays, as chosen",
        "superseded": "the field changed again before the choice was applied: the newer value stands",
    }[c.state.value]


def conflict_doc(c: Conflict) -> dict[str, Any]:
    return {
        "id": c.id,
        "at": c.at.isoformat(),
        "book": c.book,
        "record": f"{c.kind}:{c.crm_id}",
        "href": c.href,
        "field": c.field,
        "crm": c.crm_value,
        "card": c.card_value,
        "winner": c.winner,
        "state": c.state.value,
        "kept": SIDE_WORD.get(c.kept) if c.kept else None,
        "resolved_by": c.resolved_by,
        "resolved_at": c.resolved_at.isoformat() if c.resolved_at else None,
        "outcome": outcome(c),
    }
