"""Odoo's side of the contact sync (gateway/crm/sync.py): `res.partner` people (not
companies), with no Odoo module beyond `contacts`.

- **Owner:** the partner's salesperson (`user_id`), by login; "" when it has none.
- **Fields:** `name` is first and last name (split at the last space); `email` holds the
  addresses, comma-separated (Odoo's mail splits it so); `phone`, `mobile`, `function` (the
  title), `street`, `city`, `zip`; `organization` is the parent company (`parent_id`, a company
  partner of that name, made when there is none). Region, country and manager have no plain
  field (state and country are references to Odoo's own lists): they are kept in the partner's
  `comment`, in lines under a marker (gateway/crm/note_marker.py), so a card's fields survive.
- **The feed:** by `write_date` (Odoo sets it on create too), paged as gateway/crm/sync_stamps.py
  says; Odoo stamps to the second, so records stamped alike are common and are told again
  rather than skipped. An archived partner (`active` false) is a delete; `missing()`
  (`GoneCheck`) finds the partners deleted outright, of which Odoo keeps no trace.
- **Create once:** a partner made from a card has `ref` (Internal Reference) set to the digest
  of the sync key; a replay finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from gateway.crm import note_marker
from gateway.crm.base import NoteData
from gateway.crm.sync import Change, ContactFields, SyncContact
from gateway.crm.sync_stamps import EPOCH, micros, page, read_from
from gateway.errors import Permanent
from gateway.message import addresses

Call = Callable[..., Any]
PARTNER = "res.partner"
KEY_PREFIX = "crm-gateway-sync-"
_ALL = ["active", "in", [True, False]]  # naming `active` keeps archived partners in a search
_COLUMNS = {
    "function": "title",
    "street": "street",
    "city": "city",
    "zip": "postal_code",
    "phone": "phone_work",
    "mobile": "phone_mobile",
}
_COMMENT_FIELDS = ("region", "country", "manager")
_COMMENT_KEY = "pimsync:contact-fields"
_READ = ["name", "email", "active", "is_company", "user_id", "parent_id", "comment", "write_date", *_COLUMNS]
_FORMAT = "%Y-%m-%d %H:%M:%S"  # Odoo's datetimes on the wire: UTC, to the second


def _stamp(value: Any) -> datetime:
    try:
        return datetime.strptime(str(value), _FORMAT)
    except ValueError:
        return EPOCH


def _pid(contact_id: str) -> int:
    if not contact_id.isdigit():
        raise Permanent(f"not an Odoo partner id: contact:{contact_id}")
    return int(contact_id)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class OdooContactSync:
    """`ContactSync` and `GoneCheck` over the connector's call (`OdooConnector._call`)."""

    def __init__(self, call: Call, owner_id: Callable[[str], int | None]) -> None:
        self._call = call
        self._owner_id = owner_id
        self._logins: dict[int, str] = {}

    # -- the feed -------------------------------------------------------------------------

    def changes_since(self, version: int, limit: int = 1000) -> tuple[list[Change], int]:
        since = read_from(version).strftime(_FORMAT)
        rows = self._call(
            PARTNER,
            "search_read",
            domain=[_ALL, ["is_company", "=", False], ["write_date", ">=", since]],
            fields=["write_date", "active", "user_id"],
        )
        by_id = {r["id"]: r for r in rows}
        chosen, new_version = page({r["id"]: _stamp(r["write_date"]) for r in rows}, version, limit)
        out = []
        for pid, s in chosen:
            r = by_id[pid]
            out.append(Change("contact", str(pid), micros(s), not r["active"], self._login(r["user_id"]), micros(s) / 1e6))
        return out, new_version

    def missing(self, kind: str, ids: Sequence[str]) -> set[str]:
        todo = sorted({int(i) for i in ids if i.isdigit()})
        found: set[int] = set()
        for start in range(0, len(todo), 1000):
            rows = self._call(PARTNER, "search_read", domain=[_ALL, ["id", "in", todo[start : start + 1000]]], fields=["id"])
            found.update(r["id"] for r in rows)
        return {i for i in ids if not i.isdigit() or int(i) not in found}

    def _login(self, user: Any) -> str:
        uid = user[0] if isinstance(user, list) and user else user
        if not isinstance(uid, int) or not uid:
            return ""
        if uid not in self._logins:
            rows = self._call("res.users", "read", [uid], fields=["login"])
            self._logins[uid] = rows[0]["login"] if rows else ""
        return self._logins[uid]

    # -- contacts -------------------------------------------------------------------------

    def get_contact(self, contact_id: str) -> SyncContact | None:
        rows = self._call(PARTNER, "search_read", domain=[["id", "=", _pid(contact_id)]], fields=_READ)
        if not rows or rows[0]["is_company"]:
            return None
        r = rows[0]
        values: dict[str, Any] = {field: _text(r.get(col)) for col, field in _COLUMNS.items()}
        values.update(_comment_fields(_text(r.get("comment"))))
        values["emails"] = tuple(e.strip() for e in _text(r.get("email")).split(",") if e.strip())
        name = " ".join(_text(r.get("name")).split())
        if addresses.key(name) in {addresses.key(e) for e in values["emails"]}:
            name = ""  # the stand-in name of a card without one
        first, _, last = name.rpartition(" ")
        values["first_name"], values["last_name"] = (first, last) if first else ("", name)
        parent = r.get("parent_id")
        values["organization"] = parent[1] if isinstance(parent, list) and len(parent) > 1 else ""
        return SyncContact(
            str(r["id"]), self._login(r.get("user_id")), ContactFields(**values), micros(_stamp(r.get("write_date")))
        )

    def create_contact(self, data: ContactFields, owner: str, key: str) -> SyncContact:
        if not key or len(key) > 255:
            raise Permanent(f"a sync key must be 1 to 255 characters, not {len(key)}")
        code = KEY_PREFIX + note_marker.tag(key)
        found = self._call(PARTNER, "search_read", domain=[_ALL, ["ref", "=", code]], fields=["id"], limit=1)
        if found:  # a replay: the partner made the first time
            rec = self.get_contact(str(found[0]["id"]))
            if rec is None:
                raise Permanent(f"the contact made for this card is gone: contact:{found[0]['id']}")
            return rec
        [pid] = self._call(
            PARTNER, "create", vals_list=[{**self._values(data), "ref": code, "user_id": self._owner_id(owner) or False}]
        )
        return self._read_back(pid)

    def update_contact(self, contact_id: str, data: ContactFields) -> SyncContact:
        pid = _pid(contact_id)
        if not self._call(PARTNER, "search_read", domain=[["id", "=", pid]], fields=["id"]):
            raise Permanent(f"no such record in the CRM: contact:{pid}")
        self._call(PARTNER, "write", [pid], vals=self._values(data))
        return self._read_back(pid)

    def _read_back(self, pid: int) -> SyncContact:
        rec = self.get_contact(str(pid))
        if rec is None:
            raise Permanent(f"contact:{pid} left the contacts while it was written")
        return rec

    def delete_contact(self, contact_id: str) -> None:
        """Archives the partner: Odoo refuses to delete one that invoices or orders use, and
        an archived partner is how Odoo's own users remove a contact."""
        pid = _pid(contact_id)
        if self._call(PARTNER, "search_read", domain=[["id", "=", pid]], fields=["id"]):
            self._call(PARTNER, "write", [pid], vals={"active": False})

    def _values(self, data: ContactFields) -> dict[str, Any]:
        emails = list(dict.fromkeys(addresses.normalize(e) for e in data.emails if addresses.key(e)))
        name = " ".join(" ".join(p for p in (data.first_name, data.last_name) if p).split())
        vals: dict[str, Any] = {col: getattr(data, field).strip() or False for col, field in _COLUMNS.items()}
        vals.update(
            name=name or data.display_name() or "(no name)",
            email=", ".join(emails) or False,
            parent_id=self._company(data.organization),
            comment=_comment(data),
        )
        return vals

    def _company(self, name: str) -> int | bool:
        name = " ".join(name.split())
        if not name:
            return False
        rows = self._call(
            PARTNER, "search_read", domain=[["is_company", "=", True], ["name", "=ilike", _like(name)]], fields=["id"], limit=1
        )
        if rows:
            return int(rows[0]["id"])
        return int(self._call(PARTNER, "create", vals_list=[{"name": name, "is_company": True}])[0])


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _comment(data: ContactFields) -> str | bool:
    lines = [f"{f}: {' '.join(getattr(data, f).split())}" for f in _COMMENT_FIELDS if getattr(data, f).strip()]
    if not lines:
        return False
    return note_marker.compose(NoteData(key=_COMMENT_KEY, title="Contact details (address book)", text="\n".join(lines)))


def _comment_fields(comment: str) -> dict[str, str]:
    parsed = note_marker.parse(comment)
    if parsed is None or parsed.tag != note_marker.tag(_COMMENT_KEY):
        return {}
    out = {}
    for line in parsed.text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in _COMMENT_FIELDS:
            out[key] = value
    return out
