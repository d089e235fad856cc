"""`forget ADDRESS` on Tryton: erase what the gateway made for a person.

Records `made_by_gateway` accepts are deleted with the gateway's attachments and notes on
them (an opportunity first, cancelled then deleted, then its party); trytond deletes the
other notes and attachments of a deleted record itself. Records a person made stay; they lose the mails
(attachments and notes the gateway wrote) in which the address took part. A mail counts as
removed when no record holds it any more, as unlinked otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm import tryton_mail as tm
from gateway.crm.base import ForgetReport, PartyRef
from gateway.crm.tryton_records import OPPORTUNITY, PARTY, resource
from gateway.crm.tryton_rpc import TrytonRpc
from gateway.message import addresses


def forget(rpc: TrytonRpc, address: str, refs: Sequence[PartyRef], made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
    """Forget `address`, whose records (found by the connector) are `refs`."""
    k = addresses.key(address)
    doomed = [r for r in refs if made_by_gateway(r)]
    call = rpc.call
    resources = [resource(r) for r in refs]
    if not resources:
        return ForgetReport()
    atts = call("model.ir.attachment.search_read", [("resource", "in", resources)], 0, None, None, ["resource", "description"])
    notes = call("model.ir.note.search_read", [("resource", "in", resources)], 0, None, None, ["resource", "message"])
    doomed_res = {resource(r) for r in doomed}
    drop_att: list[int] = []
    drop_note: list[int] = []
    touched: set[str] = set()

    def mine(m: tm.Marker | None) -> bool:
        return m is not None and k in {addresses.key(a) for a in m.participants}

    for rows, field, drop in ((atts, "description", drop_att), (notes, "message", drop_note)):
        for r in rows:
            m = tm.parse(r[field])
            if m is not None and (r["resource"] in doomed_res or (mine(m) or _with_eml_of(m, rows, field, k))):
                drop.append(r["id"])
                touched.add(m.key)
    if drop_att:
        call("model.ir.attachment.delete", drop_att)
    if drop_note:
        call("model.ir.note.delete", drop_note)
    opp_ids = [int(r.id) for r in doomed if r.kind == "lead"]
    party_ids = [int(r.id) for r in doomed if r.kind != "lead"]
    if opp_ids:
        for o in call("model.sale.opportunity.read", opp_ids, ["party"]):
            party_ids.append(o["party"])
        # Tryton deletes only cancelled opportunities ("you must cancel it"): a lead goes through
        # its own Cancel button first (the workflow's lead → cancelled transition)
        call("model.sale.opportunity.cancel", opp_ids)
        call("model.sale.opportunity.delete", opp_ids)
    if party_ids:
        _drop_parties(call, sorted(set(party_ids)), OPPORTUNITY, PARTY)
    removed = 0
    for key in touched:
        left = call("model.ir.attachment.search_count", [("description", "like", tm.line_pattern(tm.KEY, key))])
        removed += 0 if left else 1
    return ForgetReport(parties=tuple(doomed), emails_removed=removed, emails_unlinked=len(touched) - removed)


def _with_eml_of(m: tm.Marker, rows: list[dict[str, Any]], field: str, k: str) -> bool:
    """A file attachment belongs to the person's mail when its .eml (same mail) names them."""
    if m.part in ("eml", "note"):
        return False
    for r in rows:
        other = tm.parse(r[field])
        if other is not None and other.key == m.key and other.part == "eml":
            return k in {addresses.key(a) for a in other.participants}
    return False


def _drop_parties(call: Callable[..., Any], party_ids: list[int], opportunity: str, party: str) -> None:
    # a party a person's opportunity still points at cannot go: keep it, without this address
    used = {o["party"] for o in call(f"model.{opportunity}.search_read", [("party", "in", party_ids)], 0, None, None, ["party"])}
    free = [p for p in party_ids if p not in used]
    if free:
        call(f"model.{party}.delete", free)
