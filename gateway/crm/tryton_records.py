"""How the gateway's records map onto Tryton's (docs/tryton.md): the models, the gateway's party
categories, a record's `resource` string, and the names and notes a created record gets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.crm.base import PARTY_KINDS, PartyData, PartyRef
from gateway.errors import Permanent
from gateway.message import addresses

__all__ = ["CATEGORIES", "OPPORTUNITY", "PARTY", "created", "creation_note", "display_name", "resource", "website_domain"]


CATEGORIES = {"account": "CRM account", "lead": "CRM lead", "made": "CRM by mail gateway"}
PARTY, OPPORTUNITY = "party.party", "sale.opportunity"


def resource(ref: PartyRef) -> str:
    if ref.kind not in PARTY_KINDS:
        raise Permanent(f"unknown record kind {ref.kind!r}")
    if not ref.id.isdigit():
        raise Permanent(f"not a Tryton id: {ref.label()}")
    return f"{OPPORTUNITY if ref.kind == 'lead' else PARTY},{ref.id}"


def created(row: dict[str, Any], key: str = "create_date") -> datetime | None:
    value = row.get(key)
    return value if isinstance(value, datetime) else None


def website_domain(value: str) -> str:
    v = value.strip().lower()
    v = v.split("://", 1)[1] if "://" in v else v
    v = v.split("/", 1)[0].split(":", 1)[0]
    v = v[4:] if v.startswith("www.") else v
    return addresses.domain_of("x@" + v) if v else ""


def display_name(kind: str, data: PartyData) -> str:
    if kind == "account":
        name = data.name or data.domain or (addresses.domain_of(data.emails[0]) if data.emails else "")
    else:
        name = " ".join(p for p in (data.first_name, data.last_name) if p) or data.name
        name = name or (data.emails[0] if data.emails else "")
    return " ".join(name.replace("\x00", "").split())[:255] or "(no name)"


def creation_note(kind: str, data: PartyData) -> str:
    lines = [f"Created by the mail gateway as a {kind}."]
    if data.owner:
        lines.append(f"Owner: {data.owner}")
    if data.company and kind == "lead":
        lines.append(f"Company: {data.company}")
    if data.account is not None:
        lines.append(f"Account: {data.account.name} (party {data.account.id})")
    for k, v in data.fields.items():
        lines.append(f"{k}: {v}")
    return "\n".join(" ".join(str(x).split()) for x in lines) + "\n"
