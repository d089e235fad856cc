"""How the gateway's records map onto vtiger's: the modules, their e-mail fields, the
webservice ids (`12x345`), and the rows turned into refs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from gateway.crm.base import PartyRef
from gateway.errors import Permanent
from gateway.message import addresses

MODULES: dict[str, str] = {"lead": "Leads", "contact": "Contacts", "account": "Accounts"}
EMAIL_FIELDS = {"lead": ("email", "secondaryemail"), "contact": ("email", "secondaryemail"), "account": ("email1", "email2")}
_WSID = re.compile(r"^\d+x\d+$")


def wsid(ref: PartyRef) -> str:
    if ref.kind not in MODULES or not _WSID.match(ref.id):
        raise Permanent(f"not a vtiger record: {ref.label()}")
    return ref.id


def crmid(wsid: str) -> int:
    return int(wsid.split("x", 1)[1])


def website_host(website: str) -> str:
    w = website.strip()
    host = urlsplit(w if "://" in w else "//" + w).hostname or ""
    host = host.removeprefix("www.")
    return addresses.domain_of("x@" + host) if host else ""


def party_ref(kind: str, row: dict[str, Any]) -> PartyRef:
    if kind == "account":
        name = str(row.get("accountname") or "")
    else:
        name = " ".join(p for p in (str(row.get("firstname") or ""), str(row.get("lastname") or "")) if p)
    return PartyRef(kind, str(row["id"]), name)  # type: ignore[arg-type]
