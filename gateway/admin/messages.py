"""Messages as the API and the console show them: a filtered page, one message in full (its
headers, trace, copies and the records it is on in the CRM), and a look-up by Message-ID.

Each takes the asker's `Visibility` (None: everything); a message none of whose copies lies in
a mailbox the person owns is refused, not hidden, so a wrong link says why. The CRM records a
message is on are shown only when the person's CRM users may see them (their own or shared),
in `crm_records` and in the journal's targets alike."""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, cast

from gateway.admin import filing
from gateway.admin.operations import Gateway, explain_doc
from gateway.admin.scope import RecordSight, Visibility, require_sees, visible_copies
from gateway.crm.base import PARTY_KINDS, record_visible
from gateway.errors import GatewayError, NotFound
from gateway.ledger import LocationRow, MessageRow
from gateway.ledger.search import MessageFilter, search_messages

LIMIT_MAX = 500
_LABEL = re.compile(r"\b(" + "|".join(PARTY_KINDS) + r"):([\w.-]+)")


def message_item(
    gw: Gateway, row: MessageRow, scope: Visibility | None = None, copies: list[LocationRow] | None = None
) -> dict[str, Any]:
    """One line of a listing: where the message's first copy (of those the person sees) lies
    and what became of it. `copies`: the message's, when the caller read them for a page."""
    copies = visible_copies(scope, gw.ledger.locations_of(row.id) if copies is None else copies)
    first = copies[0].ref if copies else None
    return {
        "id": row.id,
        "message_id": row.message_id,
        "subject": row.subject,
        "sender": row.from_address,
        "date": row.created_at.isoformat() if row.created_at else None,  # first seen by the gateway
        "state": str(row.state),
        "reason": row.reason,
        "source": first.source if first else None,
        "account": first.account if first else None,
        "folder": first.folder if first else None,
    }


def list_messages(gw: Gateway, f: MessageFilter, limit: int, offset: int, scope: Visibility | None) -> dict[str, Any]:
    if scope is not None:
        f = MessageFilter(**{**f.__dict__, "sources_any": scope.sources, "accounts_any": scope.accounts})
    limit = max(1, min(limit, LIMIT_MAX))
    rows, total = search_messages(gw.ledger.reader, f, limit, max(0, offset))
    copies = gw.ledger.copies_of([r.id for r in rows])  # one query for the page, not one a row
    return {
        "messages": [message_item(gw, r, scope, copies[r.id]) for r in rows],
        "total": total,
        "limit": limit,
        "offset": max(0, offset),
    }


def message_doc(gw: Gateway, message_pk: int, scope: Visibility | None) -> dict[str, Any]:
    """One message in full: `explain`'s document, its headers (while its bytes can be read) and
    the records the CRM links its stored mail to."""
    try:
        row = gw.ledger.message(message_pk)
    except KeyError:
        raise NotFound(f"no message with id {message_pk}") from None
    copies = gw.ledger.locations_of(message_pk)
    require_sees(scope, copies, f"message {message_pk}")
    (doc,) = [d for d in explain_doc(gw, str(message_pk), scope)]
    doc["item"] = message_item(gw, row, scope)
    doc["headers"] = _headers(gw, row)
    try:
        parents = gw.crm.thread_parents([row.message_id])
        if scope is not None:
            parents = [r for r in parents if record_visible(gw.crm, r, scope.crm_users)]
            _leave_out_hidden_records(gw, doc, scope)
        doc["crm_records"] = [r.as_dict() | {"record": r.label()} for r in parents]
    except GatewayError as exc:  # unreachable, or a CRM that cannot say who sees a record
        doc["crm_records"] = None
        doc["crm_error"] = str(exc)
        if scope is not None:  # the journal's and the rules' records cannot be checked either
            doc["journal"], doc["found"], doc["found_by_domain"] = {}, {}, {}
            if isinstance(doc.get("review"), dict):
                doc["review"] = {**doc["review"], "candidates": []}
    return doc


def _leave_out_hidden_records(gw: Gateway, doc: dict[str, Any], scope: Visibility) -> None:
    """Leave out of the document the records the person may not see: a journal step that made
    or adopted one is dropped; a write's `targets`, what the rules found and the review's
    candidates keep the visible ones; the history's words name none of them."""
    sight = RecordSight(gw.crm, scope)
    visible = sight.sees_doc

    journal: dict[str, Any] = {}
    for step, result in doc["journal"].items():
        if isinstance(result, dict) and "targets" in result:
            result = {**result, "targets": [t for t in result.get("targets") or [] if visible(t)]}
        elif not visible(result):
            continue
        journal[step] = result
    doc["journal"] = journal
    for event in doc.get("history") or []:  # `resolved by a person: contact:1, …`
        if isinstance(event.get("detail"), str):
            event["detail"] = _LABEL.sub(
                lambda m: m[0] if sight.sees(m[1], m[2]) else "(a record you may not see)", event["detail"]
            )
    if isinstance(doc.get("review"), dict) and "candidates" in doc["review"]:
        doc["review"] = {**doc["review"], "candidates": sight.candidates(doc["review"]["candidates"])}
    for key in ("found", "found_by_domain"):
        if isinstance(doc.get(key), dict):
            doc[key] = {k: [r for r in v if visible(r)] if isinstance(v, list) else v for k, v in doc[key].items()}


def lookup(gw: Gateway, message_id: str, scope: Visibility | None, mailbox: str | None = None) -> dict[str, Any]:
    """The message with this Message-ID (the newest version the person may see); one only in
    another's mailbox is as unknown as one never seen. A mail the gateway never handled that a
    mailbox of the person holds is not in the CRM yet and can be filed (filing.unfiled_doc);
    in none of them: NotFound. `mailbox`: the one to search first (the add-in's Outlook user)."""
    rows = gw.ledger.find_messages(message_id)
    mine = [r for r in rows if scope is None or scope.sees_any(gw.ledger.locations_of(r.id))]
    if not mine:
        return filing.unfiled_doc(cast(filing.Mailboxes, gw), message_id, scope, mailbox)
    return {**message_doc(gw, mine[-1].id, scope), "known": True}


def _headers(gw: Gateway, row: MessageRow) -> list[list[str]] | None:
    """The header fields in order, from the spool, else as the CRM stored the mail; None when
    neither has its bytes any more."""
    raw: bytes | None = None
    if row.spool_path:
        try:
            with open(row.spool_path, "rb") as f:
                raw = f.read(256 * 1024)
        except OSError:
            raw = None
    if raw is None:
        try:
            stored = gw.crm.find_email(row.message_id, row.content_hash)
            raw_email = getattr(gw.crm, "raw_email", None)
            raw = raw_email(stored) if stored is not None and raw_email is not None else None
        except GatewayError:
            raw = None
    if not raw:
        return None
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    return [[k, str(v)] for k, v in parsed.items()]
