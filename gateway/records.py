"""Conversions between the engine's and the connector's values and their JSON forms.

The ledger stores Plans and journal results as JSON so that a retry after a crash replays
the same Plan instead of evaluating again; these functions are the two directions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.crm.base import AttachmentData, EmailRecord, PartyData, PartyRef
from gateway.engine.model import OnError, Plan, PlannedAttach, PlannedCreate, ReviewInfo, Target
from gateway.message import Message


def ref_to_json(ref: PartyRef, created: bool = False) -> dict[str, Any]:
    return {"kind": ref.kind, "id": ref.id, "name": ref.name, "created": created}


def ref_from_json(d: dict[str, Any]) -> PartyRef:
    return PartyRef(kind=d["kind"], id=str(d["id"]), name=d.get("name", ""))


def _target(d: dict[str, Any] | None) -> Target | None:
    if d is None:
        return None
    return Target(ref=ref_from_json(d["ref"]) if d.get("ref") else None, create_key=d.get("create_key"))


def _party_data(d: dict[str, Any]) -> PartyData:
    return PartyData(
        kind=d["kind"], emails=tuple(d.get("emails", ())), first_name=d.get("first_name", ""),
        last_name=d.get("last_name", ""), name=d.get("name", ""), company=d.get("company", ""),
        domain=d.get("domain", ""), owner=d.get("owner", ""),
        account=ref_from_json(d["account"]) if d.get("account") else None, fields=dict(d.get("fields") or {}))


def plan_from_json(d: dict[str, Any]) -> Plan:
    """Rebuild the executable part of a stored Plan (the trace stays JSON in the ledger)."""
    attach = d.get("attach")
    review = d.get("review")
    on_error = d.get("on_error") or {}
    return Plan(
        outcome=d["outcome"], direction=d["direction"], counterparts=tuple(d.get("counterparts", ())),
        reason=d.get("reason", ""),
        creates=[PlannedCreate(key=c["key"], kind=c["kind"], address=c["address"], data=_party_data(c["data"]),
                               rule=c.get("rule", ""), account=_target(c.get("account"))) for c in d.get("creates", [])],
        attach=PlannedAttach(targets=tuple(_target(t) for t in attach["targets"]),  # type: ignore[misc]
                             attachments=attach.get("attachments", True), rules=tuple(attach.get("rules", ())))
        if attach else None,
        tags_add=list(d.get("tags_add", [])), tags_remove=list(d.get("tags_remove", [])), move=d.get("move"),
        review=ReviewInfo(reason=review.get("reason", ""),
                          candidates=tuple((a, tuple(ref_from_json(r) for r in refs)) for a, refs in review.get("candidates", [])))
        if review else None,
        on_error=OnError(tags=tuple(on_error.get("tags", ("CRM error",))), untags=tuple(on_error.get("untags", ())),
                         move=on_error.get("move")),
        touched=list(d.get("touched", [])),
    )


def email_record(message: Message, raw: bytes, direction: str, *, with_attachments: bool = True,
                 owner: str = "") -> EmailRecord:
    """The CRM's record of a mail. `raw`: the bytes `message` was parsed from."""
    first_from = message.from_[0] if message.from_ else None
    verified = len(raw) == message.raw_size and not message.headers_only
    return EmailRecord(
        message_id=message.message_id, content_hash=message.content_hash, subject=message.subject,
        from_address=first_from.address if first_from else "", from_name=first_from.name if first_from else "",
        to=tuple(a.address for a in message.to), cc=tuple(a.address for a in message.cc),
        date=message.date, date_offset_minutes=message.date_offset_minutes, direction=direction,  # type: ignore[arg-type]
        text=message.text, html=message.html, raw=raw,
        attachments=tuple(AttachmentData(a.filename, a.content_type, a.size, a.sha256, a.payload)
                          for a in message.attachments) if with_attachments else (),
        in_reply_to=message.in_reply_to, references=message.references, owner=owner,
        # the parser hashed `raw` and every payload itself: the CRM need not hash them again
        raw_sha256=message.raw_sha256 if verified else "", hashes_verified=verified)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None
