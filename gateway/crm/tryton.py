"""Tryton as the CRM (`crm.backend: tryton`), over JSON-RPC (`gateway.crm.tryton_rpc`).

How records map (docs/tryton.md):
- contact: a `party.party` with email contact mechanisms;
- account: a party in the category "CRM account", its domain as a `website` mechanism;
- lead: a `sale.opportunity` in state "lead"; its party (category "CRM lead") holds the
  addresses. A lead's PartyRef id is the opportunity's id. A "CRM lead" party whose
  opportunities all left the lead state counts as a contact again;
- every party the gateway makes is also in the category "CRM by mail gateway" (`made_by_gateway`);
- the mail: on each linked record an `ir.attachment` with the raw .eml, one per attached file,
  and an `ir.note` summary, all marked as `tryton_mail` describes. On an opportunity the
  three go in one `write`; on a party in two `create` calls;
- a rule's note: an `ir.note` with the key in a trailing marker (`tryton_notes`).

Requests (each is one JSON-RPC call): `find` 1 (2 when a lead matched; it also reads the
address's domain's accounts, which the next `find_by_domain` in this thread uses for 2 s),
`attach` 3 on parties (search what is there, create the attachments, create the notes) and
2 on leads (search, one `write`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm import tryton_attach, tryton_forget, tryton_notes, tryton_search
from gateway.crm import tryton_mail as tm
from gateway.crm.base import (
    PARTY_KINDS,
    EmailRecord,
    EmailRef,
    ForgetReport,
    NoteData,
    NoteRef,
    PartyData,
    PartyKind,
    PartyRef,
    RecordHit,
    register_connector,
)
from gateway.crm.config_models import TrytonConfig
from gateway.crm.tryton_contacts import TrytonContactSync
from gateway.crm.tryton_create import Creates
from gateway.crm.tryton_records import (
    CATEGORIES,
    OPPORTUNITY,
    PARTY,
    created,
    resource,
    website_domain,
)
from gateway.crm.tryton_rpc import TrytonRpc
from gateway.errors import Permanent
from gateway.message import addresses

__all__ = ["CATEGORIES", "OPPORTUNITY", "PARTY", "TrytonConnector"]


_PREFETCH_SECONDS = 2.0  # how long `find`'s look at a domain's accounts serves `find_by_domain`
_PARTY_FIELDS = ["value", "party", "party.name", "party.categories", "party.create_date"]


class TrytonConnector:
    name = "tryton"

    def __init__(self, rpc: TrytonRpc, *, shared: bool = True) -> None:
        self.rpc = rpc
        self.shared = shared  # every record may be picked by anyone (crm.record_visibility: shared)
        self._cats: dict[str, int] | None = None
        self._lock = threading.Lock()
        self._creates = Creates(rpc)
        self._prefetch = threading.local()

    # -- set-up --------------------------------------------------------------------------

    def check_online(self) -> None:
        """Log in and read what the connector needs; raises Retryable (unreachable) or
        Permanent (wrong credentials, no database, modules missing, no company)."""
        self.rpc.login()
        models = self.rpc.call("model.ir.model.search_read", [("name", "in", [PARTY, OPPORTUNITY])], 0, None, None, ["name"])
        missing = {PARTY, OPPORTUNITY} - {m["name"] for m in models}
        if missing:
            raise Permanent(
                f"Tryton database {self.rpc.database!r} lacks {', '.join(sorted(missing))}: "
                "activate the party and sale_opportunity modules"
            )
        if not self.rpc.context.get("company"):
            raise Permanent(f"Tryton user {self.rpc.username!r} has no current company (set crm.company or the user's company)")
        self._categories()

    def _categories(self) -> dict[str, int]:
        """The ids of the gateway's party categories, made on first use (once per process;
        another gateway making them at the same moment is fine: the second one re-reads)."""
        if self._cats is None:
            with self._lock:
                if self._cats is None:
                    try:
                        self._cats = self._make_categories()
                    except Permanent:  # "name must be unique": someone else just made them
                        self._cats = self._make_categories()
        return self._cats

    def _make_categories(self) -> dict[str, int]:
        names = list(CATEGORIES.values())
        rows = self.rpc.call(
            "model.party.category.search_read", [("name", "in", names), ("parent", "=", None)], 0, None, None, ["name"]
        )
        by_name = {r["name"]: r["id"] for r in rows}
        todo = [{"name": n} for n in names if n not in by_name]
        if todo:
            for vals, new_id in zip(todo, self.rpc.call("model.party.category.create", todo), strict=True):
                by_name[vals["name"]] = new_id
        return {k: by_name[v] for k, v in CATEGORIES.items()}

    def _kind_of(self, categories: Sequence[int]) -> str:
        cats = self._categories()
        if cats["account"] in categories:
            return "account"
        return "lead-party" if cats["lead"] in categories else "contact"

    # -- lookups ---------------------------------------------------------------------------

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        for kind in kinds:
            if kind not in PARTY_KINDS:
                raise Permanent(f"unknown record kind {kind!r}")
        k = addresses.key(address)
        if not k or not kinds:
            return []
        self._categories()
        norm = addresses.normalize(address)
        patterns: set[str] = set()
        for spelling in addresses.spellings(address):  # quoted and plain: a form keeps it plain
            local, _, domain = spelling.rpartition("@")
            patterns.add(tm.address_pattern(spelling))
            with contextlib.suppress(UnicodeError):
                patterns.add(tm.address_pattern(f"{local}@{domain.encode('idna').decode()}"))
        value_clause: list[Any] = [("value", "ilike", p) for p in sorted(patterns)]
        if len(value_clause) > 1:
            value_clause = ["OR", *value_clause]
        search: list[Any] = [("type", "=", "email"), value_clause]
        if domain:  # the domain's accounts in the same request: the rules ask for them next
            search = ["OR", search, self._website_clause(addresses.domain_of(norm))]
        rows = self.rpc.call(
            "model.party.contact_mechanism.search_read", search, 0, None, [("party", "ASC")], [*_PARTY_FIELDS, "type"]
        )
        if domain:
            self._prefetch.site = (addresses.domain_of(norm), time.monotonic(), [r for r in rows if r["type"] == "website"])
        parties: dict[int, dict[str, Any]] = {}
        for r in rows:
            if r["type"] == "email" and addresses.key(r["value"]) == k and r.get("party."):
                parties.setdefault(r["party"], r["party."])
        by_kind: dict[str, list[PartyRef]] = {"lead": [], "contact": [], "account": []}
        lead_parties: dict[int, dict[str, Any]] = {}
        for pid, p in sorted(parties.items()):
            category = self._kind_of(p.get("categories") or [])
            if category == "lead-party":
                lead_parties[pid] = p
            else:
                by_kind[category].append(PartyRef(category, str(pid), p.get("name") or "", created(p)))  # type: ignore[arg-type]
        if lead_parties and ("lead" in kinds or "contact" in kinds):
            opps = self.rpc.call(
                "model.sale.opportunity.search_read",
                [("party", "in", sorted(lead_parties)), ("state", "=", "lead")],
                0,
                None,
                [("id", "ASC")],
                ["party", "create_date"],
            )
            with_lead = set()
            for o in opps:
                with_lead.add(o["party"])
                by_kind["lead"].append(PartyRef("lead", str(o["id"]), lead_parties[o["party"]].get("name") or "", created(o)))
            for pid, p in lead_parties.items():
                if pid not in with_lead:  # converted or lost: the person is a contact now
                    by_kind["contact"].append(PartyRef("contact", str(pid), p.get("name") or "", created(p)))
            by_kind["contact"].sort(key=lambda r: int(r.id))
        out: list[PartyRef] = []
        for kind in dict.fromkeys(kinds):
            out.extend(by_kind[kind])
        return out

    def _website_clause(self, d: str) -> list[Any]:
        return [
            ("type", "=", "website"),
            ("value", "ilike", "%" + tm.address_pattern(d) + "%"),
            ("party.categories", "=", self._categories()["account"]),
        ]

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        d = addresses.domain_of("x@" + domain.strip().lstrip("@"))
        if not d:
            return []
        pre = getattr(self._prefetch, "site", None)
        self._prefetch.site = None
        if pre is not None and pre[0] == d and time.monotonic() - pre[1] < _PREFETCH_SECONDS:
            rows = pre[2]  # read a moment ago by `find` for an address at this domain, in this thread
        else:
            rows = self.rpc.call(
                "model.party.contact_mechanism.search_read", self._website_clause(d), 0, None, [("party", "ASC")], _PARTY_FIELDS
            )
        seen: dict[int, PartyRef] = {}
        for r in rows:
            if website_domain(r["value"]) == d and r.get("party."):
                p = r["party."]
                seen.setdefault(r["party"], PartyRef("account", str(r["party"]), p.get("name") or "", created(p)))
        return [seen[pid] for pid in sorted(seen)]

    # -- what a person may pick (gateway/crm/tryton_search.py) ----------------------------

    def search(self, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int) -> list[RecordHit]:
        """Parties and lead opportunities by name, address or website; every record is shared
        unless `crm.record_visibility: admins`, when a person (not an admin) finds none."""
        if users is not None and not self.shared:
            return []
        return tryton_search.Search(self.rpc, self._categories()).run(text, kinds, limit)

    def visible_to(self, ref: PartyRef, users: frozenset[str]) -> bool:
        tryton_search.exists(self.rpc, ref)
        return self.shared

    # -- creates ---------------------------------------------------------------------------

    def create(self, kind: PartyKind, data: PartyData) -> PartyRef:
        return self._creates.create(kind, data, self._categories())

    # -- attach ----------------------------------------------------------------------------

    # A known sender's mail then costs find + attachments + note: 3 requests, not 4.
    wants_first_attempt_hint = True

    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        """The mail's attachments and note on each record, once (gateway/crm/tryton_attach.py)."""
        return tryton_attach.attach(self.rpc, parents, mail, first_attempt=first_attempt)

    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        return tryton_attach.find_email(self.rpc, message_id, content_hash)

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        return tryton_attach.thread_parents(self.rpc, self._kind_of, message_ids)

    # -- notes ---------------------------------------------------------------------------

    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """An `ir.note` on each record, once per key (gateway/crm/tryton_notes.py)."""
        return tryton_notes.add_note(self.rpc, [resource(p) for p in parents], note)

    # -- forget ----------------------------------------------------------------------------

    def made_by_gateway(self, ref: PartyRef) -> bool:
        """Whether the gateway created this record (its party is in "CRM by mail gateway")."""
        model, rid = resource(ref).split(",")
        field = "party.categories" if model == OPPORTUNITY else "categories"
        rows = self.rpc.call(f"model.{model}.read", [int(rid)], [field])
        cats = rows[0].get("party.", {}).get("categories", []) if model == OPPORTUNITY else rows[0]["categories"]
        return self._categories()["made"] in (cats or [])

    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        """gateway/crm/tryton_forget.py, on the records this address finds."""
        refs = self.find(address, PARTY_KINDS) if addresses.key(address) else []
        return tryton_forget.forget(self.rpc, address, refs, made_by_gateway)

    # -- contact sync (gateway/crm/tryton_contacts.py) ------------------------------------

    def contact_sync(self) -> TrytonContactSync:
        return TrytonContactSync(self.rpc, self._categories())

    def close(self) -> None:
        self.rpc.close()


@register_connector("tryton")
def _from_config(crm: TrytonConfig) -> TrytonConnector:
    rpc = TrytonRpc(crm.url, crm.database or "", crm.username or "", crm.password or "", timeout=crm.timeout, company=crm.company)
    return TrytonConnector(rpc, shared=crm.record_visibility == "shared")
