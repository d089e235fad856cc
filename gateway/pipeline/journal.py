"""The journal's vocabulary: the names it gives a Plan's steps, the JSON form of their
results, and the record of a mail an attach step sends.

The ledger keeps the results as JSON so that a retry after a crash adopts what was done. It
keeps the Plan as JSON text too (`Plan.to_json`, in the engine's model, which the ledger may
not import): `plan_text` writes it and `plan_of` reads it back, the one way every reader
(the pipeline, decisions, `explain`, `review`) gets a stored Plan. Shared by the CRM
execution, the runner and what a person decides; `explain` reads CRM_DONE."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.crm.base import AttachmentData, EmailRecord, NoteData, PartyRef
from gateway.engine.model import Plan, PlannedNote, Target
from gateway.ledger import MessageRow
from gateway.message.parsing import Message

CRM_DONE = "crm_done"  # journal mark: every CRM step of the Plan is done


def plan_text(plan: Plan) -> str:
    """The Plan as the ledger stores it."""
    return json.dumps(plan.to_json(), default=str)


def plan_of(row: MessageRow) -> Plan | None:
    """The message's stored Plan, None when it has none (not evaluated yet, reopened, forgotten).
    Plans stored by earlier versions read back too (`Plan.from_json`)."""
    return Plan.from_json(json.loads(row.plan_json)) if row.plan_json else None


def steps_of(plan: Plan) -> list[str]:
    return [c.key for c in plan.creates] + (["attach"] if plan.attach is not None else []) + [n.key for n in plan.notes]


def resolve_targets(targets: Sequence[Target], created: Mapping[str, PartyRef]) -> list[PartyRef]:
    """Planned targets as records, once each: found ones and those the Plan created."""
    refs: list[PartyRef] = []
    for t in targets:
        ref = t.ref or created.get(t.create_key or "")
        if ref is not None and all((ref.kind, ref.id) != (x.kind, x.id) for x in refs):
            refs.append(ref)
    return refs


def note_data(note: PlannedNote, message: Message, owner: str) -> NoteData:
    """What the CRM gets for a planned note. Its key names the mail as the CRM knows it (its
    Message-ID and content, as attach does: copies in two mailboxes agree, two mails with one
    body do not) and the step, so a replay finds the note it may have written."""
    mail = hashlib.sha256(f"{message.message_id}\n{message.content_hash}".encode()).hexdigest()[:32]
    key = f"{mail}/{note.key}"
    if len(key) > 255:  # a long rule name: the step by its digest
        key = f"{mail}/note:{hashlib.sha256(note.key.encode()).hexdigest()[:32]}"
    return NoteData(key=key, text=note.text, title=note.title, owner=owner, message_id=message.message_id)


def targets_of(plan: Plan, created: Mapping[str, PartyRef]) -> list[PartyRef]:
    """The records the Plan attaches the mail to, once each: found ones and those it created."""
    return resolve_targets(plan.attach.targets if plan.attach is not None else (), created)


def evaluated_note(plan: Plan) -> str:
    return "evaluated: " + (", ".join(plan.touched) or "no rule touched it")


def ref_to_json(ref: PartyRef, created: bool = False) -> dict[str, Any]:
    return {"kind": ref.kind, "id": ref.id, "name": ref.name, "created": created}


def ref_from_json(d: dict[str, Any]) -> PartyRef:
    return PartyRef(kind=d["kind"], id=str(d["id"]), name=d.get("name", ""))


def email_record(message: Message, raw: bytes, direction: str, *, with_attachments: bool = True, owner: str = "") -> EmailRecord:
    """The CRM's record of a mail. `raw`: the bytes `message` was parsed from."""
    first_from = message.from_[0] if message.from_ else None
    verified = len(raw) == message.raw_size and not message.headers_only
    return EmailRecord(
        message_id=message.message_id,
        content_hash=message.content_hash,
        subject=message.subject,
        from_address=first_from.address if first_from else "",
        from_name=first_from.name if first_from else "",
        to=tuple(a.address for a in message.to),
        cc=tuple(a.address for a in message.cc),
        date=message.date,
        date_offset_minutes=message.date_offset_minutes,
        direction=direction,  # type: ignore[arg-type]
        text=message.text,
        html=message.html,
        raw=raw,
        attachments=tuple(AttachmentData(a.filename, a.content_type, a.size, a.sha256, a.payload) for a in message.attachments)
        if with_attachments
        else (),
        in_reply_to=message.in_reply_to,
        references=message.references,
        owner=owner,
        # the parser hashed `raw` and every payload itself: the CRM need not hash them again
        raw_sha256=message.raw_sha256 if verified else "",
        hashes_verified=verified,
    )
