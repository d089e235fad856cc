"""What one person may see and pick, as the admin functions take it (`None`: everything).

The web layer makes one from the signed-in person (gateway/web/auth/principal.py); the CLI
passes none: whoever runs it can read the config and the ledger anyway."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.crm.base import PARTY_KINDS, Connector, PartyRef, record_visible
from gateway.errors import NotAllowed, NotFound
from gateway.ledger import LocationRow


@dataclass(frozen=True)
class Visibility:
    sources: frozenset[str]  # every copy in these sources
    accounts: frozenset[str]  # every copy in these accounts (lower-case addresses), in any source
    crm_users: frozenset[str] = frozenset()  # the CRM users whose records may be picked (lower-case)

    def sees(self, source: str, account: str) -> bool:
        return source in self.sources or account.strip().lower() in self.accounts

    def sees_any(self, copies: Iterable[LocationRow]) -> bool:
        return any(self.sees(c.ref.source, c.ref.account) for c in copies)


def visible_copies(scope: Visibility | None, copies: Iterable[LocationRow]) -> list[LocationRow]:
    """The copies in the mailboxes the person owns (all of them for `None`): another's mailbox
    holding the same message is not theirs to see."""
    return [c for c in copies if scope is None or scope.sees(c.ref.source, c.ref.account)]


def require_sees(scope: Visibility | None, copies: Iterable[LocationRow], what: str) -> None:
    """Refuse a message none of whose copies lies in a mailbox the person owns."""
    if scope is not None and not scope.sees_any(copies):
        raise NotAllowed(f"{what} is in a mailbox you do not own")


def require_record_visible(crm: Connector, ref: PartyRef, scope: Visibility | None) -> None:
    """Refuse a record the person's CRM users may not see (their own, or shared) as if it did
    not exist: another's record id is not theirs to learn of."""
    if scope is not None and not record_visible(crm, ref, scope.crm_users):
        raise NotFound(f"no {ref.kind} with id {ref.id} in the CRM")


def require_found_by_message_id(scope: Visibility | None, visible: bool, message_id: str) -> None:
    """Refuse a Message-ID none of whose messages lies in the person's mailboxes as unknown:
    a Message-ID names a mail, and whether another mailbox holds it is not theirs to learn."""
    if scope is not None and not visible:
        raise NotFound(f"no message with Message-ID {message_id}")


@dataclass
class RecordSight:
    """Which CRM records a person may see, asked of the CRM once per record (a page shows
    the same records many times). `scope` None: every record."""

    crm: Connector
    scope: Visibility | None
    _seen: dict[tuple[str, str], bool] = field(default_factory=dict)

    def sees(self, kind: str, ident: str) -> bool:
        if self.scope is None:
            return True
        key = (kind, ident)
        if key not in self._seen:
            self._seen[key] = kind in PARTY_KINDS and record_visible(self.crm, PartyRef(kind, ident), self.scope.crm_users)
        return self._seen[key]

    def sees_doc(self, doc: Any) -> bool:
        """A record as documents carry it (`{"kind": …, "id": …}`); anything else is no record."""
        if not isinstance(doc, dict) or "kind" not in doc or "id" not in doc:
            return True
        return self.sees(str(doc["kind"]), str(doc["id"]))

    def candidates(self, pairs: Any) -> Any:
        """A review's candidates (`[[address, [record, …]], …]`) with the hidden records left out."""
        if self.scope is None or not isinstance(pairs, list):
            return pairs
        return [
            [p[0], [r for r in p[1] if self.sees_doc(r)]] if isinstance(p, (list, tuple)) and len(p) == 2 else p for p in pairs
        ]
