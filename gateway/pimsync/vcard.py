"""Contact fields ↔ vCard (RFC 6350 4.0 and RFC 2426 3.0) through vobject.

`render` writes the fields into a card: a new one, or the card as the server had it, so what
the sync does not map (a photo, a birthday, a note, a home phone) survives its updates. The
mapping, the same both ways:

  first_name/last_name  N (family; given)   FN is written from them
  title                 TITLE               organization  ORG (first component)
  emails                every EMAIL         manager       X-MANAGER (the manager's name)
  phone_work            the TEL with TYPE=WORK, else the first that is no cell, home or fax
  phone_mobile          the first TEL with TYPE=CELL
  street, city, region, postal_code, country   the first ADR with TYPE=WORK, else the first
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import vobject

from gateway.crm.sync import ContactFields
from gateway.errors import Permanent

CRM_ID = "x-crm-id"  # "contact:12": which CRM record a card was made from


@dataclass(frozen=True)
class ParsedCard:
    uid: str
    fields: ContactFields
    changed_at: float | None  # REV as seconds since the epoch, when the card has one


def _types(prop: Any) -> set[str]:
    out: set[str] = set()
    for value in prop.params.get("TYPE", []):
        out.update(v.strip().upper() for v in str(value).split(","))
    return out


def _tel(card: Any, mobile: bool) -> Any:
    """The cell phone; or the work phone: TYPE=WORK, else the first that is no cell, home or fax."""
    tels = card.contents.get("tel", [])
    if mobile:
        return next((t for t in tels if "CELL" in _types(t)), None)
    work = next((t for t in tels if "WORK" in _types(t) and "CELL" not in _types(t)), None)
    return work or next((t for t in tels if not _types(t) & {"CELL", "HOME", "FAX"}), None)


def _adr(card: Any) -> Any:
    adrs = card.contents.get("adr", [])
    return next((a for a in adrs if "WORK" in _types(a)), adrs[0] if adrs else None)


def _text(card: Any, name: str) -> str:
    prop = card.contents.get(name)
    if not prop:
        return ""
    value = prop[0].value
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def parse(text: str) -> ParsedCard:
    try:
        card = vobject.readOne(text)
    except Exception as e:  # vobject raises its own ParseError and plain ValueErrors alike
        raise Permanent(f"not a vCard: {e}") from e
    n = card.contents.get("n")
    first = last = ""
    if n:
        first, last = str(n[0].value.given or "").strip(), str(n[0].value.family or "").strip()
    elif card.contents.get("fn"):
        first, _, last = _text(card, "fn").rpartition(" ")
    adr = _adr(card)
    work, mobile = _tel(card, False), _tel(card, True)
    fields = ContactFields(
        first_name=first,
        last_name=last,
        title=_text(card, "title"),
        organization=_text(card, "org"),
        emails=tuple(str(e.value).strip() for e in card.contents.get("email", []) if str(e.value).strip()),
        phone_work=str(work.value).strip() if work else "",
        phone_mobile=str(mobile.value).strip() if mobile else "",
        street=str(adr.value.street or "").strip() if adr else "",
        city=str(adr.value.city or "").strip() if adr else "",
        region=str(adr.value.region or "").strip() if adr else "",
        postal_code=str(adr.value.code or "").strip() if adr else "",
        country=str(adr.value.country or "").strip() if adr else "",
        manager=_text(card, "x-manager"),
    )
    return ParsedCard(_text(card, "uid"), fields, _rev(_text(card, "rev")))


def _rev(value: str) -> float | None:
    for fmt in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H%M%S%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            at = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return None


def _remove(card: Any, name: str, only: Any = None) -> None:
    """Remove `only` (when given) or every property `name`."""
    for prop in [only] if only is not None else list(card.contents.get(name, [])):
        card.remove(prop)


def _add(card: Any, name: str, value: Any, types: str | None = None) -> None:
    if value in ("", None):
        return
    prop = card.add(name)
    prop.value = value
    if types:
        prop.type_param = types


def render(data: ContactFields, uid: str, crm_id: str, version: str = "3.0", base: str | None = None) -> str:
    """The card for these fields: `base` (the server's text) updated, or a new card."""
    if base:
        card = vobject.readOne(base)
        version = _text(card, "version") or version
    else:
        card = vobject.vCard()
        card.add("version").value = version
        card.add("uid").value = uid
    for name in ("n", "fn", "title", "org", "email", "x-manager", CRM_ID, "rev"):
        _remove(card, name)
    _add(card, "n", vobject.vcard.Name(family=data.last_name, given=data.first_name))
    _add(card, "fn", data.display_name() or data.organization or uid)
    _add(card, "title", data.title)
    _add(card, "org", [data.organization] if data.organization else "")
    for address in data.emails:  # INTERNET is vCard 3's word; 4.0 has no such type
        _add(card, "email", address, "INTERNET" if version == "3.0" else None)
    work, mobile = _tel(card, False), _tel(card, True)
    for old in (work, mobile):
        if old is not None:
            _remove(card, "tel", old)
    _add(card, "tel", data.phone_work, "WORK")
    _add(card, "tel", data.phone_mobile, "CELL")
    old_adr = _adr(card)
    if old_adr is not None:
        _remove(card, "adr", old_adr)
    if any((data.street, data.city, data.region, data.postal_code, data.country)):
        address = vobject.vcard.Address(
            street=data.street, city=data.city, region=data.region, code=data.postal_code, country=data.country
        )
        _add(card, "adr", address, "WORK")
    _add(card, "x-manager", data.manager)
    _add(card, CRM_ID, crm_id)
    _add(card, "rev", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return str(card.serialize())
