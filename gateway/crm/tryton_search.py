"""Finding Tryton records by what a person types (the console's and the API's record search),
and who may see one.

Search, as the records map (docs/tryton.md): contacts and accounts are parties found by `name`
`ilike` or by an `email` or `website` contact mechanism whose value is `ilike` the text
(`('contact_mechanisms', 'where', …)`); accounts are those in the category "CRM account",
contacts the others, less the "CRM lead" parties that still have an opportunity in the lead
state; leads are those opportunities, found by their party the same way or by their
description. `%`, `_` and `\\` in the text are escaped (they match as typed); each model is
asked for at most `limit` rows, contacts a page more when lead parties took places.

Who sees what: the party and sale_opportunity modules give a party no owner (an
opportunity's employee is a salesperson, not who may see it), and Tryton's own access rules
are per model, not per party. So every record is shared: a person may pick any of them
(`crm.record_visibility: shared`, the default). `crm.record_visibility: admins` makes records
pickable by admins only: a person's search then finds nothing and a pick is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.crm import tryton_mail as tm
from gateway.crm.base import PartyKind, PartyRef, RecordHit
from gateway.crm.tryton_records import OPPORTUNITY, PARTY, resource, website_domain
from gateway.crm.tryton_rpc import TrytonRpc
from gateway.errors import NotFound

_TYPES = ["email", "website"]


def _party_match(pattern: str, types: list[str]) -> list[Any]:
    mechanisms = [("type", "in", types), ("value", "ilike", pattern)]
    return ["OR", ("name", "ilike", pattern), ("contact_mechanisms", "where", mechanisms)]


class Search:
    """One search: `rpc` and the gateway's category ids (`account`, `lead`)."""

    def __init__(self, rpc: TrytonRpc, categories: dict[str, int]) -> None:
        self.rpc, self.cats = rpc, categories

    def run(self, text: str, kinds: Sequence[PartyKind], limit: int) -> list[RecordHit]:
        pattern = "%" + tm.address_pattern(text.strip()) + "%"
        found: list[tuple[PartyKind, int, int, str]] = []  # kind, record id, party id, name
        for kind in dict.fromkeys(kinds):
            if kind == "lead":
                found += self._leads(pattern, limit)
            elif kind == "account":
                rows = self._parties([_party_match(pattern, _TYPES), ("categories", "=", self.cats["account"])], 0, limit)
                found += [("account", r["id"], r["id"], r["name"]) for r in rows]
            else:
                found += self._contacts(pattern, limit)
        found = found[:limit]
        mechanisms = self._mechanisms(sorted({pid for _, _, pid, _ in found}))
        hits = []
        for kind, rid, pid, name in found:
            mine = mechanisms.get(pid, [])
            emails = tuple(v for t, v in mine if t == "email")
            site = next((website_domain(v) for t, v in mine if t == "website"), "") if kind == "account" else ""
            hits.append(RecordHit(ref=PartyRef(kind, str(rid), name), emails=emails, domain=site))
        return hits

    def _parties(self, domain: list[Any], offset: int, limit: int) -> list[dict[str, Any]]:
        return self.rpc.call(f"model.{PARTY}.search_read", domain, offset, limit, [("id", "ASC")], ["name", "categories"])

    def _contacts(self, pattern: str, limit: int) -> list[tuple[PartyKind, int, int, str]]:
        domain = [_party_match(pattern, _TYPES), ("categories", "not where", [("id", "=", self.cats["account"])])]
        out: list[tuple[PartyKind, int, int, str]] = []
        for page in range(2):  # a second page when lead parties took places on the first
            rows = self._parties(domain, page * limit, limit)
            leads = self._with_open_lead([r["id"] for r in rows if self.cats["lead"] in (r.get("categories") or [])])
            out += [("contact", r["id"], r["id"], r["name"]) for r in rows if r["id"] not in leads]
            if len(rows) < limit or len(out) >= limit:
                break
        return out[:limit]

    def _with_open_lead(self, party_ids: list[int]) -> set[int]:
        if not party_ids:
            return set()
        rows = self.rpc.call(
            f"model.{OPPORTUNITY}.search_read", [("party", "in", party_ids), ("state", "=", "lead")], 0, None, None, ["party"]
        )
        return {r["party"] for r in rows}

    def _leads(self, pattern: str, limit: int) -> list[tuple[PartyKind, int, int, str]]:
        mechanisms = [("type", "=", "email"), ("value", "ilike", pattern)]
        match = [
            "OR",
            ("party.name", "ilike", pattern),
            ("party.contact_mechanisms", "where", mechanisms),
            ("description", "ilike", pattern),
        ]
        rows = self.rpc.call(
            f"model.{OPPORTUNITY}.search_read",
            [("state", "=", "lead"), match],
            0,
            limit,
            [("id", "ASC")],
            ["party", "party.name"],
        )
        return [("lead", r["id"], r["party"], (r.get("party.") or {}).get("name") or "") for r in rows]

    def _mechanisms(self, party_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
        if not party_ids:
            return {}
        rows = self.rpc.call(
            "model.party.contact_mechanism.search_read",
            [("party", "in", party_ids), ("type", "in", _TYPES)],
            0,
            None,
            [("id", "ASC")],
            ["party", "type", "value"],
        )
        out: dict[int, list[tuple[str, str]]] = {}
        for r in rows:
            out.setdefault(r["party"], []).append((r["type"], r["value"]))
        return out


def exists(rpc: TrytonRpc, ref: PartyRef) -> None:
    """Raise NotFound for a record that is not in Tryton (a lead: an opportunity)."""
    model, rid = resource(ref).split(",")
    if not rpc.call(f"model.{model}.search", [("id", "=", int(rid))], 0, 1, None):
        raise NotFound(f"no {ref.kind} with id {ref.id} in Tryton")
