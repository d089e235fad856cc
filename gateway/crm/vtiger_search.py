"""Finding vtiger / vtenext records by what a person types (the console's and the API's record
search), and who may see one.

Search: the webservice's `query` per module (VTQL, docs/vtiger.md), `like '%text%'` on the
name fields (`firstname`, `lastname`; leads also `company`; accounts `accountname` and
`website`) and the two e-mail fields, the conditions joined by `or` alone (VTQL has no
parentheses, and its `and`/`or` mix is read left to right). A text of several words also
looks each word up in the name fields, so "Ann Lee" finds first name Ann, last name Lee. VTQL
answers at most 100 rows a query: the rows are read a page at a time (`limit offset, 100`), at
most `SCAN_PAGES` pages per module, and kept here only when the text is really in one of those
fields (MySQL's `like` also ignores accents, and `%`/`_` typed by a person are wildcards
there) and the person may see the record, until `limit` records are found.

Who sees what: a record's owner is its `assigned_user_id`. A person sees the records assigned
to one of their CRM users (the vtiger Users whose `email1` or `user_name` is one of their
addresses or their sources' `crm_user`) and those assigned to the user the gateway logs in as:
that is where the gateway puts a record made for nobody in particular, so they are shared.
A record assigned to a group, or to another user, is left to those people and the admins.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from gateway.crm.base import PartyKind, PartyRef, RecordHit
from gateway.crm.vtiger_records import EMAIL_FIELDS, MODULES, party_ref, website_host, wsid
from gateway.crm.vtiger_ws import PAGE, Webservice, literal
from gateway.errors import NotFound

SCAN_PAGES = 5  # at most 500 rows read per module for one search
NAME_FIELDS = {
    "lead": ("firstname", "lastname", "company"),
    "contact": ("firstname", "lastname"),
    "account": ("accountname", "website"),
}


def _fold(text: str) -> str:
    """As MySQL's utf8_general_ci compares: no case, no accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _like(text: str) -> str:
    # a backslash never reaches VTQL (vtiger_ws.literal): `%` in its place, the rows are checked here
    return literal("%" + text.replace("\\", "%") + "%")


def _where(kind: str, text: str) -> str:
    terms = list(dict.fromkeys([text, *text.split()]))
    conditions = [f"{f} like {_like(t)}" for t in terms for f in NAME_FIELDS[kind]]
    conditions += [f"{f} like {_like(text)}" for f in EMAIL_FIELDS[kind]]
    return " or ".join(conditions)


def _has(kind: str, row: dict[str, Any], folded: str) -> bool:
    values = [str(row.get(f) or "") for f in (*NAME_FIELDS[kind], *EMAIL_FIELDS[kind])]
    if kind != "account":
        values.append(f"{row.get('firstname') or ''} {row.get('lastname') or ''}")
    return any(folded in _fold(v) for v in values)


def _users(ws: Webservice, where: str) -> list[dict[str, Any]]:
    return ws.call("GET", "query", {"query": f"select * from Users where {where};"}) or []


def owners(ws: Webservice, users: frozenset[str]) -> set[str]:
    """The ids of the vtiger users who are one of `users` (by `email1` or `user_name`), and the
    gateway's own user (shared)."""
    ws.login()
    mine = {ws.user_id}
    if users:
        listed = ", ".join(literal(u) for u in sorted(users) if "\\" not in u)
        if listed:
            rows = _users(ws, f"email1 in ({listed}) or user_name in ({listed})")
            mine |= {str(r["id"]) for r in rows if {str(r.get(f) or "").lower() for f in ("email1", "user_name")} & users}
    return mine


def search(ws: Webservice, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int) -> list[RecordHit]:
    text = text.strip()
    folded = _fold(text)
    allowed = None if users is None else owners(ws, users)
    found: list[tuple[PartyKind, dict[str, Any]]] = []
    for kind in dict.fromkeys(kinds):
        where = _where(kind, text)
        for page_no in range(SCAN_PAGES):
            if len(found) >= limit:
                break
            query = f"select * from {MODULES[kind]} where {where} limit {page_no * PAGE}, {PAGE};"
            page = ws.call("GET", "query", {"query": query}) or []
            for row in page:
                if _has(kind, row, folded) and (allowed is None or str(row.get("assigned_user_id")) in allowed):
                    found.append((kind, row))
            if len(page) < PAGE:
                break
    found = found[:limit]
    ws.login()
    # the gateway's own user stands for nobody in particular: those records show no owner
    assigned = sorted({str(r.get("assigned_user_id")) for _, r in found if r.get("assigned_user_id")} - {ws.user_id})
    emails: dict[str, str] = {}
    if assigned:
        rows = _users(ws, f"id in ({', '.join(literal(a) for a in assigned)})")
        emails = {str(r["id"]): str(r.get("email1") or r.get("user_name") or "") for r in rows}
    return [_hit(kind, row, emails) for kind, row in found]


def _hit(kind: PartyKind, row: dict[str, Any], emails: dict[str, str]) -> RecordHit:
    return RecordHit(
        ref=party_ref(kind, row),
        emails=tuple(str(row[f]) for f in EMAIL_FIELDS[kind] if row.get(f)),
        domain=website_host(str(row.get("website") or "")) if kind == "account" else "",
        owner=emails.get(str(row.get("assigned_user_id")), ""),
    )


def visible_to(ws: Webservice, ref: PartyRef, users: frozenset[str]) -> bool:
    rows = ws.call("GET", "query", {"query": f"select * from {MODULES[ref.kind]} where id = {literal(wsid(ref))};"}) or []
    if not rows:
        raise NotFound(f"no {ref.kind} with id {ref.id} in vtiger")
    return str(rows[0].get("assigned_user_id")) in owners(ws, users)
