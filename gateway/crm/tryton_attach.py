"""The mail on Tryton records: `attach` (an `ir.attachment` with the raw .eml and one per file on
each record, and an `ir.note` summary, all marked as `tryton_mail` describes), and finding
stored mail again (`find_email`, `thread_parents`) by those markers.

On an opportunity the three go in one `write`; on a party in two `create` calls (attachments,
then notes). Each function takes the connection (`TrytonRpc`); reading a party's kind takes
the connector's `kind_of`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm import tryton_mail as tm
from gateway.crm.base import EmailRecord, EmailRef, PartyRef
from gateway.crm.tryton_records import OPPORTUNITY, PARTY, created, resource
from gateway.crm.tryton_rpc import TrytonRpc

__all__ = ["attach", "find_email", "thread_parents"]


KindOf = Callable[[Sequence[int]], str]  # a party's categories → account, lead-party or contact


def _stored(
    rpc: TrytonRpc, domain: list[Any], fields: Sequence[str] = ("resource", "description")
) -> list[tuple[dict[str, Any], tm.Marker]]:
    rows = rpc.call("model.ir.attachment.search_read", domain, 0, None, [("id", "ASC")], list(fields))
    return [(r, m) for r in rows if (m := tm.parse(r.get("description"))) is not None]


def attach(rpc: TrytonRpc, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
    targets = list(dict.fromkeys(resource(p) for p in parents))
    mid = " ".join(mail.message_id.split())
    # On a first attempt nothing of this mail can be stored yet: no need to look.
    stored = (
        []
        if first_attempt
        else [
            (r, m)
            for r, m in _stored(rpc, [("description", "like", tm.line_pattern(tm.KEY, mail.content_hash))])
            if m.message_id == mid and m.key == mail.content_hash
        ]
    )
    have: dict[str, set[str]] = {}
    for r, m in stored:
        have.setdefault(r["resource"], set()).add(m.part)
    wanted = ["eml", *(str(i) for i in range(len(mail.attachments)))]
    attachments: list[dict[str, Any]] = []
    for target in targets:
        got = have.get(target, set())
        pieces = [
            tm.eml_values(mail) if p == "eml" else tm.file_values(mail, int(p), mail.attachments[int(p)])
            for p in wanted
            if p not in got
        ]
        if not pieces:
            continue
        if target.startswith(OPPORTUNITY):  # attachments and note in one write
            oid = int(target.split(",")[1])
            vals: dict[str, Any] = {"attachments": [["create", pieces]]}
            if not got:
                vals["notes"] = [["create", [{"message": tm.note_message(mail)}]]]
            rpc.call("model.sale.opportunity.write", [oid], vals)
        else:
            attachments += [p | {"resource": target} for p in pieces]
    party_targets = sorted({a["resource"] for a in attachments})
    if attachments:
        rpc.call("model.ir.attachment.create", attachments)
    # the note goes last: a crash in between leaves the mail complete but unannounced,
    # and a retry adds the note (the mail is checked for completeness, the note after it)
    fresh = [t for t in party_targets if t not in have]
    late = [t for t in party_targets if t in have] + [t for t in targets if t in have and t not in party_targets]
    notes = [{"resource": t, "message": tm.note_message(mail)} for t in fresh]
    if late:
        noted = rpc.call(
            "model.ir.note.search_read",
            [("resource", "in", late), ("message", "like", tm.line_pattern(tm.KEY, mail.content_hash))],
            0,
            None,
            None,
            ["resource", "message"],
        )
        done = {n["resource"] for n in noted if (mk := tm.parse(n["message"])) and mk.message_id == mid and mk.part == "note"}
        notes += [
            {"resource": t, "message": tm.note_message(mail)} for t in late if t not in done and not t.startswith(OPPORTUNITY)
        ]
    if notes:
        rpc.call("model.ir.note.create", notes)
    return EmailRef(tm.email_id(mid, mail.content_hash), mail.message_id, mail.content_hash)


def find_email(rpc: TrytonRpc, message_id: str, content_hash: str | None = None) -> EmailRef | None:
    mid = " ".join(message_id.split())
    if content_hash is not None:
        clause = ("description", "like", tm.line_pattern(tm.KEY, content_hash))
    else:
        clause = ("description", "like", tm.line_pattern(tm.MID, mid))
    for _r, m in _stored(rpc, [clause]):
        if m.part == "eml" and m.message_id == mid and (content_hash is None or m.key == content_hash):
            return EmailRef(tm.email_id(mid, m.key), message_id, m.key)
    return None


def thread_parents(rpc: TrytonRpc, kind_of: KindOf, message_ids: Sequence[str]) -> list[PartyRef]:
    mids = list(dict.fromkeys(" ".join(m.split()) for m in message_ids if m and m.strip()))
    if not mids:
        return []
    clauses: list[Any] = [("description", "like", tm.line_pattern(tm.MID, m)) for m in mids]
    domain = [["OR", *clauses]] if len(clauses) > 1 else clauses
    resources = dict.fromkeys(r["resource"] for r, m in _stored(rpc, domain) if m.part == "eml" and m.message_id in mids)
    return _refs(rpc, kind_of, list(resources))


def _refs(rpc: TrytonRpc, kind_of: KindOf, resources: Sequence[str]) -> list[PartyRef]:
    party_ids = [int(r.split(",")[1]) for r in resources if r.startswith(PARTY + ",")]
    opp_ids = [int(r.split(",")[1]) for r in resources if r.startswith(OPPORTUNITY + ",")]
    out: list[PartyRef] = []
    if party_ids:
        for p in rpc.call("model.party.party.read", party_ids, ["name", "categories", "create_date"]):
            kind = kind_of(p["categories"])
            out.append(PartyRef("contact" if kind == "lead-party" else kind, str(p["id"]), p["name"] or "", created(p)))  # type: ignore[arg-type]
    if opp_ids:
        for o in rpc.call("model.sale.opportunity.read", opp_ids, ["party.name", "create_date"]):
            out.append(PartyRef("lead", str(o["id"]), (o.get("party.") or {}).get("name") or "", created(o)))
    return out
