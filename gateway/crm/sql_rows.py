"""Rows of the embedded CRM: its tables as SQLAlchemy Tables, and the conversions between the
gateway's values (PartyRef, PartyData, EmailRecord) and those rows, cleaned of what a database
refuses (NUL in text, over-long names).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from gateway.crm.base import PARTY_KINDS, EmailRecord, PartyData, PartyRef
from gateway.crm.sql_models import Blob, Email, EmailAttachment, EmailLink, PartyEmail
from gateway.errors import Permanent
from gateway.message import addresses

__all__ = [
    "CHUNK",
    "at",
    "bl",
    "chunks",
    "clean",
    "em",
    "email_values",
    "ln",
    "new_ref",
    "participant_keys",
    "party_id",
    "party_values",
    "pe",
    "ref_from_row",
]


T = TypeVar("T")


CHUNK = 500  # bound parameters per IN (…): SQLite allows 32766, keep statements small anyway
_COLUMNS_FROM_FIELDS = {
    "lead": {"first_name", "last_name", "company", "status"},
    "contact": {"first_name", "last_name"},
    "account": {"name", "domain"},
}

# cast: a declarative class's __table__ is typed FromClause; these are Tables
pe, em, ln, at, bl = (cast(sa.Table, m.__table__) for m in (PartyEmail, Email, EmailLink, EmailAttachment, Blob))


def clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; strip it on every backend so both store the same
    return text.replace("\x00", "") if "\x00" in text else text


def party_id(ref: PartyRef) -> int:
    if ref.kind not in PARTY_KINDS:
        raise Permanent(f"unknown record kind {ref.kind!r}")
    try:
        return int(ref.id)
    except ValueError:
        raise Permanent(f"not an id of the embedded CRM: {ref.label()}") from None


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def ref_from_row(kind: str, row: Any) -> PartyRef:
    """A record from a row with id, created_at and the `_name_columns` a and b."""
    name = " ".join(p for p in (row.a, row.b) if p)
    return PartyRef(kind, str(row.id), name, row.created_at)  # type: ignore[arg-type]


def new_ref(kind: str, row: Any) -> PartyRef:
    """A record from the full row of its table (what `create` inserted)."""
    name = row.name if kind == "account" else " ".join(p for p in (row.first_name, row.last_name) if p)
    return PartyRef(kind, str(row.id), name, row.created_at)  # type: ignore[arg-type]


def party_values(kind: str, data: PartyData) -> tuple[dict[str, Any], dict[str, str]]:
    """Columns for a new record, and the rule's `fields` that have no column of their own."""
    if kind == "account":
        domain = data.domain or (addresses.domain_of(data.emails[0]) if data.emails else "")
        domain = addresses.domain_of("x@" + domain.lstrip("@")) if domain else ""
        values: dict[str, Any] = {"name": data.name or domain, "domain": domain}
    else:
        first, last = data.first_name, data.last_name
        if not (first or last) and data.name:
            first, _, last = data.name.strip().rpartition(" ")
            first, last = (first, last) if first else ("", last)
        values = {"first_name": first, "last_name": last}
        if kind == "lead":
            values["company"] = data.company
    extra: dict[str, str] = {}
    for name, value in data.fields.items():
        if name in _COLUMNS_FROM_FIELDS[kind]:
            values[name] = value
        else:
            extra[name] = clean(str(value))
    # names come from display names in mail: cut rather than have the CRM refuse the record
    return {k: clean(v)[:255] if isinstance(v, str) else v for k, v in values.items()}, extra


def email_values(mail: EmailRecord, now: datetime) -> dict[str, Any]:
    return dict(
        message_id=clean(mail.message_id),
        content_hash=mail.content_hash,
        subject=clean(mail.subject),
        from_address=clean(mail.from_address),
        from_name=clean(mail.from_name),
        to_addresses=[clean(a) for a in mail.to],
        cc_addresses=[clean(a) for a in mail.cc],
        in_reply_to=[clean(a) for a in mail.in_reply_to],
        references=[clean(a) for a in mail.references],
        date=mail.date,
        date_offset_minutes=mail.date_offset_minutes,
        direction=mail.direction,
        text=clean(mail.text),
        html=clean(mail.html),
        owner=clean(mail.owner),
        created_at=now,
    )


def participant_keys(row: Any) -> set[str]:
    return {addresses.key(a) for a in [row.from_address, *(row.to_addresses or []), *(row.cc_addresses or [])]}
