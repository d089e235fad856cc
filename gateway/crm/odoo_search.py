"""Finding Odoo records by what a person types (the console's and the API's record search),
and who may see one.

Search: `search_read` on `res.partner` (contacts: `is_company` false, accounts: true) and
`crm.lead` with the domain `['|', ('name', 'ilike', q), ('email', 'ilike', q)]` (a lead's
address is `email_from`; accounts also match their `website`, leads their contact and
company names), `limit` rows per model. Odoo wraps an `ilike` value in `%…%` itself and passes
`%`, `_` and `\\` through to PostgreSQL: they are escaped here, so they match as typed.

Who sees what: Odoo's owner of a partner or a lead is its salesperson, `user_id`. A person sees
the records whose `user_id` is the `res.users` whose login is one of their CRM users (their
addresses and their sources' `crm_user`, compared case-insensitively), and the records with no
salesperson: unassigned is shared. An admin asks with no users and sees every record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm.base import PartyKind, PartyRef, RecordHit
from gateway.crm.odoo_records import MODEL, address_keys, escape_like, party_ref, record_id, website_host
from gateway.errors import NotFound

Call = Callable[..., Any]

_FIELDS = {
    "res.partner": ["id", "name", "email", "is_company", "website", "user_id"],
    "crm.lead": ["id", "name", "contact_name", "email_from", "user_id"],
}
_MATCHED = {  # the fields a typed text is looked for in, per kind
    "contact": ("name", "email"),
    "account": ("name", "email", "website"),
    "lead": ("name", "email_from", "contact_name", "partner_name"),
}


def _any_of(terms: Sequence[list[Any]]) -> list[Any]:
    """Odoo's prefix OR: one `|` fewer than there are terms."""
    return ["|"] * (len(terms) - 1) + list(terms)


def _m2o(value: Any) -> int | None:
    """A many2one as `read` gives it: `[id, display name]`, or false when empty."""
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def user_ids(call: Call, users: frozenset[str]) -> dict[int, str]:
    """The `res.users` whose login is one of `users` (case-insensitive): id → login."""
    if not users:
        return {}
    terms = [["login", "=ilike", escape_like(u)] for u in sorted(users)]
    rows = call("res.users", "search_read", domain=_any_of(terms), fields=["id", "login"])
    return {int(r["id"]): str(r["login"]) for r in rows if str(r["login"]).lower() in users}


def _visible(ids: dict[int, str] | None) -> list[Any]:
    if ids is None:
        return []
    return ["|", ["user_id", "=", False], ["user_id", "in", sorted(ids)]]


def search(call: Call, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int) -> list[RecordHit]:
    pattern = escape_like(text.strip())
    mine = None if users is None else user_ids(call, users)
    rows: list[tuple[PartyKind, dict[str, Any]]] = []
    for kind in dict.fromkeys(kinds):
        model = MODEL[kind]
        domain = _any_of([[f, "ilike", pattern] for f in _MATCHED[kind]]) + _visible(mine)
        if model == "res.partner":
            domain.append(["is_company", "=", kind == "account"])
        found = call(model, "search_read", domain=domain, fields=_FIELDS[model], order="id", limit=limit)
        rows += [(kind, r) for r in found]
    rows = rows[:limit]
    logins = _logins(call, {u for _, r in rows if (u := _m2o(r.get("user_id"))) is not None})
    return [_hit(kind, r, logins) for kind, r in rows]


def _logins(call: Call, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {int(r["id"]): str(r["login"]) for r in call("res.users", "read", sorted(ids), fields=["id", "login"])}


def _hit(kind: PartyKind, row: dict[str, Any], logins: dict[int, str]) -> RecordHit:
    model = MODEL[kind]
    emails = str(row.get("email_from" if model == "crm.lead" else "email") or "")
    uid = _m2o(row.get("user_id"))
    return RecordHit(
        ref=party_ref(kind, row),
        emails=tuple(e.strip() for e in emails.split(",") if e.strip() and address_keys(e)),
        domain=website_host(str(row.get("website") or "")) if kind == "account" else "",
        owner=logins.get(uid, "") if uid is not None else "",
    )


def visible_to(call: Call, ref: PartyRef, users: frozenset[str]) -> bool:
    # search_read, not read: Odoo's `read` of a missing id is a MissingError, not an empty list
    rows = call(MODEL[ref.kind], "search_read", domain=[["id", "=", record_id(ref)]], fields=["id", "user_id"])
    if not rows:
        raise NotFound(f"no {ref.kind} with id {ref.id} in Odoo")
    uid = _m2o(rows[0].get("user_id"))
    return uid is None or uid in user_ids(call, users)
