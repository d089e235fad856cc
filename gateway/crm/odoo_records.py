"""How the gateway's records map onto Odoo's: contacts and accounts are `res.partner`
(`is_company`), leads are `crm.lead`; the fields read back, and the rows turned into refs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from gateway.crm.base import PartyRef
from gateway.errors import Permanent
from gateway.message import addresses

MODEL = {"lead": "crm.lead", "contact": "res.partner", "account": "res.partner"}
EMAIL_FIELD = {"crm.lead": "email_from", "res.partner": "email"}
PARTY_FIELDS = ["id", "name", "email", "is_company", "website"]
LEAD_FIELDS = ["id", "name", "contact_name", "email_from"]


def escape_like(value: str) -> str:
    """A literal for an (=)ilike pattern: the wildcards and the escape character escaped."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fields_of(model: str) -> list[str]:
    return LEAD_FIELDS if model == "crm.lead" else PARTY_FIELDS


def address_keys(value: Any) -> set[str]:
    return {addresses.key(p) for p in str(value or "").split(",") if p.strip()} if value else set()


def kind_of(model: str, row: dict[str, Any]) -> str:
    return "lead" if model == "crm.lead" else "account" if row.get("is_company") else "contact"


def party_ref(kind: str, row: dict[str, Any]) -> PartyRef:
    return PartyRef(kind, str(row["id"]), str(row.get("name") or ""))  # type: ignore[arg-type]


def record_id(ref: PartyRef) -> int:
    if ref.kind not in MODEL or not ref.id.isdigit():
        raise Permanent(f"not an Odoo record: {ref.label()}")
    return int(ref.id)


def website_host(website: str) -> str:
    w = website.strip()
    host = (urlsplit(w if "://" in w else "//" + w).hostname or "").removeprefix("www.")
    return addresses.domain_of("x@" + host) if host else ""
