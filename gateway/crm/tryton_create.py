"""Records the gateway makes in Tryton (docs/tryton.md): a contact or an account is a
`party.party` with its contact mechanisms and a note; a lead is also a `sale.opportunity` in
state "lead" on that party, in the company's currency."""

from __future__ import annotations

import threading
from typing import Any

from gateway.crm.base import PARTY_KINDS, PartyData, PartyKind, PartyRef
from gateway.crm.tryton_records import PARTY, creation_note, display_name
from gateway.crm.tryton_rpc import TrytonRpc
from gateway.errors import Permanent
from gateway.message import addresses


class Creates:
    def __init__(self, rpc: TrytonRpc) -> None:
        self.rpc = rpc
        self._currency: int | None = None
        self._create_lock = threading.Lock()

    def create(self, kind: PartyKind, data: PartyData, cats: dict[str, int]) -> PartyRef:
        """`cats`: the gateway's party categories' ids (name → id), made on first use."""
        if kind not in PARTY_KINDS:
            raise Permanent(f"unknown record kind {kind!r}")
        name = display_name(kind, data)
        mechanisms = [{"type": "email", "value": addresses.normalize(e)} for e in dict.fromkeys(data.emails) if addresses.key(e)]
        domain = ""
        if kind == "account":
            domain = data.domain or (addresses.domain_of(data.emails[0]) if data.emails else "")
            domain = addresses.domain_of("x@" + domain.lstrip("@")) if domain else ""
            if domain:
                mechanisms.insert(0, {"type": "website", "value": domain})
        categories = [cats["made"]] + ([cats[kind]] if kind in ("account", "lead") else [])
        values: dict[str, Any] = {"name": name, "categories": [["add", categories]]}
        if mechanisms:
            values["contact_mechanisms"] = [["create", mechanisms]]
        note = creation_note(kind, data)
        pid = self._create_party(values)
        if kind != "lead":
            self.rpc.call("model.ir.note.create", [{"resource": f"{PARTY},{pid}", "message": note}])
            return PartyRef(kind, str(pid), name)
        opp = {
            "party": pid,
            "company": self.rpc.context.get("company"),
            "currency": self._company_currency(),
            "description": (f"{name} ({data.company})" if data.company else name)[:255],
            "comment": note,
            "notes": [["create", [{"message": note}]]],
        }
        [oid] = self.rpc.call("model.sale.opportunity.create", [opp])
        return PartyRef("lead", str(oid), name)

    def _create_party(self, values: dict[str, Any]) -> int:
        # Tryton numbers parties from a sequence; on SQLite two concurrent creates can draw the
        # same code and one fails with "The code on party must be unique". One gateway process
        # creates one party at a time, and a clash with another client is tried once more.
        with self._create_lock:
            try:
                [pid] = self.rpc.call("model.party.party.create", [values])
            except Permanent as e:
                if "must be unique" not in str(e):
                    raise
                [pid] = self.rpc.call("model.party.party.create", [values])
        return int(pid)

    def _company_currency(self) -> int:
        if self._currency is None:
            company = self.rpc.context.get("company")
            if not company:
                raise Permanent("Tryton: leads need a company; set crm.company or the user's current company")
            [row] = self.rpc.call("model.company.company.read", [company], ["currency"])
            self._currency = row["currency"]
        return self._currency
