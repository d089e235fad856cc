"""The CRM records a person may pick, and filing a message on one more of them (`POST
/api/v1/link`, the Outlook add-in's "file this mail here"): a handled one, or one the gateway
never handled, fetched from the person's mailbox by its Message-ID (filing.py)."""

from __future__ import annotations

from typing import Any, cast

from gateway.admin import filing
from gateway.admin.operations import Gateway, parse_target
from gateway.admin.scope import Visibility, require_record_visible, require_sees
from gateway.crm.base import PARTY_KINDS, PartyKind, search_records
from gateway.errors import NotFound, Permanent

SEARCH_MIN = 2  # characters: one letter would list half the CRM


def search(gw: Gateway, text: str, kind: str | None, scope: Visibility | None, limit: int = 50) -> list[dict[str, Any]]:
    text = text.strip()
    if len(text) < SEARCH_MIN:
        raise Permanent(f"give at least {SEARCH_MIN} characters of a name, address or domain to search for")
    if kind is not None and kind not in PARTY_KINDS:
        raise Permanent(f"kind must be one of {', '.join(PARTY_KINDS)} (got {kind!r})")
    kinds: tuple[PartyKind, ...] = (kind,) if kind is not None else PARTY_KINDS
    users = None if scope is None else scope.crm_users
    return [hit.as_dict() for hit in search_records(gw.crm, text, kinds, users, max(1, min(limit, 200)))]


def link(
    gw: Gateway,
    record: str,
    *,
    message: int | None = None,
    message_id: str | None = None,
    scope: Visibility | None,
    mailbox: str | None = None,
) -> dict[str, Any]:
    """File the message (by ledger id or Message-ID) on `record` (KIND:ID); linking twice
    leaves one link. `mailbox`: where to look first for a mail the gateway never handled."""
    ref = parse_target(record)
    check = getattr(gw.crm, "get_party", None)
    if check is not None and check(ref) is None:
        raise NotFound(f"no {ref.kind} with id {ref.id} in the CRM")
    require_record_visible(gw.crm, ref, scope)
    if message is not None:
        try:
            rows = [gw.ledger.message(message)]
        except KeyError:
            raise NotFound(f"no message with id {message}") from None
    elif message_id:
        rows = gw.ledger.find_messages(message_id)
    else:
        raise Permanent("give `message` (its id) or `message_id`")
    mine = [r for r in rows if scope is None or scope.sees_any(gw.ledger.locations_of(r.id))]
    if not mine and message is None:
        # never handled (or only in another's mailbox): fetched from the person's own mailbox
        return filing.file_from_mailbox(cast(filing.Mailboxes, gw), str(message_id), ref, scope, mailbox)
    if not mine:
        require_sees(scope, [], f"message {message}")
    row = mine[-1]
    email_id = gw.pipeline.link(row.id, ref)
    return {"message": row.id, "record": ref.label(), "email_id": email_id}
