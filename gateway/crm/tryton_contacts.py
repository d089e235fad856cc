"""Tryton's side of the contact sync (gateway/crm/sync.py): parties and their contact
mechanisms, with no Tryton module beyond `party`.

- **Which parties:** every party that is not one of the gateway's accounts ("CRM account").
  A party's owner is the name of its category "CRM owner: <user>" (Tryton parties have no
  assignee; a person reassigns a contact by changing that category), "" when it has none.
- **Fields:** the party's `name` is first and last name (split at the last space: "Ada Maria
  Lovelace" reads back as "Ada Maria" / "Lovelace"); `email`, `phone` and `mobile` contact
  mechanisms are the addresses, the work phone and the mobile. The other fields (title,
  organization, postal address, manager) have no place on a bare party: they are kept in one
  `ir.note` on the party, marked as gateway/crm/note_marker.py describes, so a card's fields
  survive the round trip. An edit of that note in Tryton is not seen by the feed.
- **The feed:** by `write_date` (or `create_date` for a record never written) of the parties
  and of their contact mechanisms, paged as gateway/crm/sync_stamps.py says (records stamped
  alike, or committed late, are told again rather than skipped). A party set inactive is a
  delete.
- **Deletes:** Tryton keeps no tombstones; `missing()` (`GoneCheck`) says which linked
  parties no longer exist.
- **Create once:** a party made from a card carries a party identifier (no type) whose code is
  the digest of the sync key; a replay finds it and returns that party.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.crm import note_marker
from gateway.crm.base import NoteData
from gateway.crm.sync import Change, ContactFields, SyncContact
from gateway.crm.sync_stamps import EPOCH as _EPOCH
from gateway.crm.sync_stamps import micros, page, read_from
from gateway.crm.tryton_records import CATEGORIES, PARTY
from gateway.crm.tryton_rpc import TrytonRpc
from gateway.errors import Permanent
from gateway.message import addresses

OWNER_PREFIX = "CRM owner: "
KEY_PREFIX = "crm-gateway-sync-"  # an identifier's code: this and the key's digest
_FIELDS_KEY = "pimsync:contact-fields"  # the key of the note holding the fields a party lacks
_NOTE_FIELDS = ("title", "organization", "street", "city", "region", "postal_code", "country", "manager")
_MECHANISMS = {"phone": "phone_work", "mobile": "phone_mobile"}
_NO_NAME = "(no name)"  # Tryton requires a name
_ALL = ("active", "in", [True, False])  # a search that also finds inactive parties


def _stamp(row: dict[str, Any]) -> datetime:
    value = row.get("write_date") or row.get("create_date")
    return value if isinstance(value, datetime) else _EPOCH


def _pid(contact_id: str) -> int:
    if not contact_id.isdigit():
        raise Permanent(f"not a Tryton party id: contact:{contact_id}")
    return int(contact_id)


def _changed_since(since: datetime) -> list[list[Any]]:
    """Two flat searches, created and written since, inactive records included. Flat: trytond
    adds `active = True` to a nested list (an "OR") that does not name `active` itself."""
    return [[_ALL, (stamp, ">=", since)] for stamp in ("create_date", "write_date")]


class TrytonContactSync:
    """`ContactSync` and `GoneCheck` over the connector's JSON-RPC client."""

    def __init__(self, rpc: TrytonRpc, categories: dict[str, int]) -> None:
        self.rpc = rpc
        self.account_category = categories["account"]
        self._lock = threading.Lock()

    # -- the feed -------------------------------------------------------------------------

    def changes_since(self, version: int, limit: int = 1000) -> tuple[list[Change], int]:
        since = read_from(version)
        stamps: dict[int, datetime] = {}
        for domain in _changed_since(since):
            for row in self.rpc.call(f"model.{PARTY}.search_read", domain, 0, None, None, ["write_date", "create_date"]):
                stamps[row["id"]] = max(stamps.get(row["id"], _EPOCH), _stamp(row))
            for row in self.rpc.call(
                "model.party.contact_mechanism.search_read", domain, 0, None, None, ["party", "write_date", "create_date"]
            ):
                stamps[row["party"]] = max(stamps.get(row["party"], _EPOCH), _stamp(row))
        chosen, new_version = page(stamps, version, limit)
        if not chosen:
            return [], new_version
        owners = self._owner_names()
        rows = {r["id"]: r for r in self.rpc.call(f"model.{PARTY}.read", [pid for pid, _ in chosen], ["active", "categories"])}
        out = []
        for pid, s in chosen:
            row = rows.get(pid)
            if row is None or self.account_category in row["categories"]:
                continue
            out.append(
                Change("contact", str(pid), micros(s), not row["active"], self._owner(row["categories"], owners), micros(s) / 1e6)
            )
        return out, new_version

    def missing(self, kind: str, ids: Sequence[str]) -> set[str]:
        wanted = {int(i) for i in ids if i.isdigit()}
        found: set[int] = set()
        todo = sorted(wanted)
        for start in range(0, len(todo), 1000):
            found.update(self.rpc.call(f"model.{PARTY}.search", [_ALL, ("id", "in", todo[start : start + 1000])], 0, None, None))
        return {i for i in ids if not i.isdigit() or int(i) not in found}

    # -- owners ---------------------------------------------------------------------------

    def _owner_names(self) -> dict[int, str]:
        rows = self.rpc.call("model.party.category.search_read", [("name", "like", OWNER_PREFIX + "%")], 0, None, None, ["name"])
        return {r["id"]: r["name"][len(OWNER_PREFIX) :] for r in rows}

    @staticmethod
    def _owner(categories: Sequence[int], owners: dict[int, str]) -> str:
        return next((owners[c] for c in sorted(categories) if c in owners), "")

    def _owner_category(self, owner: str) -> int:
        name = OWNER_PREFIX + owner
        with self._lock:
            ids = self.rpc.call("model.party.category.search", [("name", "=", name), ("parent", "=", None)], 0, 1, None)
            if ids:
                return int(ids[0])
            return int(self.rpc.call("model.party.category.create", [{"name": name}])[0])

    # -- contacts -------------------------------------------------------------------------

    def get_contact(self, contact_id: str) -> SyncContact | None:
        pid = _pid(contact_id)
        rows = self.rpc.call(
            f"model.{PARTY}.search_read",
            [_ALL, ("id", "=", pid)],
            0,
            None,
            None,
            ["name", "active", "categories", "write_date", "create_date"],
        )
        if not rows or not rows[0]["active"] or self.account_category in rows[0]["categories"]:
            return None
        party = rows[0]
        mechs = self.rpc.call(
            "model.party.contact_mechanism.search_read",
            [("party", "=", pid)],
            0,
            None,
            [("sequence", "ASC"), ("id", "ASC")],
            ["type", "value"],
        )
        values: dict[str, Any] = dict(self._note_fields(pid))
        values["emails"] = tuple(m["value"] for m in mechs if m["type"] == "email")
        name = " ".join((party["name"] or "").split())
        if name == _NO_NAME or addresses.key(name) in {addresses.key(e) for e in values.get("emails", ())}:
            name = ""  # the stand-in name of a card without one
        first, _, last = name.rpartition(" ")
        values["first_name"], values["last_name"] = (first, last) if first else ("", name)
        for kind, field in _MECHANISMS.items():
            values[field] = next((m["value"] for m in mechs if m["type"] == kind), "")
        owner = self._owner(party["categories"], self._owner_names())
        return SyncContact(str(pid), owner, ContactFields(**values), micros(_stamp(party)))

    def _note(self, pid: int) -> tuple[int | None, dict[str, str]]:
        rows = self.rpc.call(
            "model.ir.note.search_read",
            [("resource", "=", f"{PARTY},{pid}"), ("message", "like", f"%{note_marker.search_text(_FIELDS_KEY)}%")],
            0,
            1,
            [("id", "ASC")],
            ["message"],
        )
        parsed = note_marker.parse(rows[0]["message"]) if rows else None
        if parsed is None:
            return None, {}
        values = {}
        for line in parsed.text.splitlines():
            key, sep, value = line.partition(": ")
            if sep and key in _NOTE_FIELDS:
                values[key] = value
        return rows[0]["id"], values

    def _note_fields(self, pid: int) -> dict[str, str]:
        return self._note(pid)[1]

    def create_contact(self, data: ContactFields, owner: str, key: str) -> SyncContact:
        if not key or len(key) > 255:
            raise Permanent(f"a sync key must be 1 to 255 characters, not {len(key)}")
        code = KEY_PREFIX + note_marker.tag(key)
        found = self.rpc.call(f"model.{PARTY}.search", [_ALL, ("identifiers.code", "=", code)], 0, 1, None)
        if found:  # a replay: the party made the first time
            rec = self.get_contact(str(found[0]))
            if rec is None:
                raise Permanent(f"the contact made for this card is gone or inactive: contact:{found[0]}")
            return rec
        categories = [self._owner_category(owner)] if owner else []
        values: dict[str, Any] = {
            "name": data.display_name() or _NO_NAME,
            "identifiers": [["create", [{"code": code}]]],
            "categories": [["add", categories]],
        }
        [pid] = self.rpc.call(f"model.{PARTY}.create", [values])
        return self.update_contact(str(pid), data)

    def update_contact(self, contact_id: str, data: ContactFields) -> SyncContact:
        pid = _pid(contact_id)
        if not self.rpc.call(f"model.{PARTY}.search", [("id", "=", pid)], 0, 1, None):
            raise Permanent(f"no such record in the CRM: contact:{pid}")
        name = " ".join(" ".join(p for p in (data.first_name, data.last_name) if p).split())[:255]
        self.rpc.call(f"model.{PARTY}.write", [pid], {"name": name or data.display_name() or _NO_NAME})
        self._set_mechanisms(pid, data)
        self._set_note(pid, data)
        rec = self.get_contact(str(pid))
        if rec is None:
            raise Permanent(f"contact:{pid} left the contacts while it was written")
        return rec

    def _set_mechanisms(self, pid: int, data: ContactFields) -> None:
        """The email, phone and mobile mechanisms become these; others (fax, website) stay."""
        wanted: list[tuple[str, str]] = []
        seen: set[str] = set()
        for e in data.emails:
            k = addresses.key(e)
            if k and k not in seen:
                seen.add(k)
                wanted.append(("email", addresses.normalize(e)))
        for kind, field in _MECHANISMS.items():
            if getattr(data, field).strip():
                wanted.append((kind, getattr(data, field).strip()))
        have = self.rpc.call(
            "model.party.contact_mechanism.search_read",
            [("party", "=", pid), ("type", "in", ["email", *_MECHANISMS])],
            0,
            None,
            [("sequence", "ASC"), ("id", "ASC")],
            ["type", "value"],
        )
        if [(m["type"], m["value"]) for m in have] == wanted:
            return
        if have:
            self.rpc.call("model.party.contact_mechanism.delete", [m["id"] for m in have])
        if wanted:
            self.rpc.call(
                "model.party.contact_mechanism.create",
                [{"party": pid, "type": t, "value": v, "sequence": i + 1} for i, (t, v) in enumerate(wanted)],
            )

    def _set_note(self, pid: int, data: ContactFields) -> None:
        nid, have = self._note(pid)
        want = {f: " ".join(getattr(data, f).split()) for f in _NOTE_FIELDS if getattr(data, f).strip()}
        if want == have:
            return
        text = "\n".join(f"{k}: {v}" for k, v in want.items())
        message = note_marker.compose(NoteData(key=_FIELDS_KEY, title="Contact details (address book)", text=text))
        # Tryton keeps a note's message as written: a change is a new note in its place
        if nid is not None:
            self.rpc.call("model.ir.note.delete", [nid])
        if want:
            self.rpc.call("model.ir.note.create", [{"resource": f"{PARTY},{pid}", "message": message}])

    def delete_contact(self, contact_id: str) -> None:
        """Deactivates the party: Tryton refuses to delete a party other records use (sales,
        invoices), and an inactive party is what its users expect of a "deleted" contact."""
        pid = _pid(contact_id)
        if self.rpc.call(f"model.{PARTY}.search", [("id", "=", pid)], 0, 1, None):
            self.rpc.call(f"model.{PARTY}.write", [pid], {"active": False})


__all__ = ["CATEGORIES", "OWNER_PREFIX", "TrytonContactSync", "micros"]
