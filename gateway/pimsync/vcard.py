"""Contact fields ↔ vCard (RFC 6350 4.0 and RFC 2426 3.0) through vobject.

`render` writes the fields into a card: a new one, or the card as the server had it, so what
the sync does not map (a photo, a birthday, a note, a home phone) survives its updates. The
mapping, the same both ways:

  first_name/last_name  N (family; given)   FN is written from them
  title                 TITLE               organization  ORG (first component)
  emails                every EMAIL         manager       X-MANAGER (the manager's name)
  phone_work            the TEL with TYPE=WORK, else the first that is no cell, home or fax
                        (a fax or pager number is never a phone)
  phone_mobile          the first TEL with TYPE=CELL
  street, city, region, postal_code, country   the first ADR with TYPE=WORK, else the first

A component with several values (`N:Smith;John,Paul`, a street `1 Main St,Suite 5`) reads as
its values joined. An update changes the chosen TEL, ADR, ORG and EMAIL in place: their
parameters (TYPE=PREF, HOME…) and the components the sync does not map (ORG's unit) stay.
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
    # vCard 2.1 names types bare (`TEL;WORK;FAX:`): a parameter without a value
    out.update(str(k).upper() for k in getattr(prop, "singletonparams", []))
    return out


NOT_A_PHONE = {"FAX", "PAGER", "MODEM", "TEXTPHONE"}


def _tel(card: Any, mobile: bool) -> Any:
    """The cell phone; or the work phone: TYPE=WORK, else the first that is no cell, home or fax."""
    tels = [t for t in card.contents.get("tel", []) if not _types(t) & NOT_A_PHONE]
    if mobile:
        return next((t for t in tels if "CELL" in _types(t)), None)
    work = next((t for t in tels if "WORK" in _types(t) and "CELL" not in _types(t)), None)
    return work or next((t for t in tels if not _types(t) & {"CELL", "HOME"}), None)


def _str(value: Any, sep: str = " ") -> str:
    """A property value or component as text: lists joined, bytes (ENCODING=b) decoded."""
    if isinstance(value, list | tuple):
        return sep.join(x for x in (_str(v, sep) for v in value) if x)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value or "").strip()


def _adr(card: Any) -> Any:
    adrs = [a for a in card.contents.get("adr", []) if isinstance(a.value, vobject.vcard.Address)]
    return next((a for a in adrs if "WORK" in _types(a)), adrs[0] if adrs else None)


def _text(card: Any, name: str) -> str:
    prop = card.contents.get(name)
    if not prop:
        return ""
    value = prop[0].value
    if isinstance(value, list):  # ORG: the organization is the first component
        value = value[0] if value else ""
    return _str(value)


def parse(text: str) -> ParsedCard:
    try:
        card = vobject.readOne(text)
    except Exception as e:  # vobject raises its own ParseError and plain ValueErrors alike
        raise Permanent(f"not a vCard: {e}") from e
    if getattr(card, "name", "").upper() != "VCARD":  # a lenient server may hold a VCALENDAR
        raise Permanent(f"not a vCard but a {getattr(card, 'name', '?')}")
    n = card.contents.get("n")
    first = last = ""
    if n and isinstance(n[0].value, vobject.vcard.Name):
        first, last = _str(n[0].value.given), _str(n[0].value.family)
    elif n:  # a name vobject could not split (an encoded one): the whole as the family name
        last = _str(n[0].value)
    elif card.contents.get("fn"):
        first, _, last = _text(card, "fn").rpartition(" ")
    adr = _adr(card)
    work, mobile = _tel(card, False), _tel(card, True)
    fields = ContactFields(
        first_name=first,
        last_name=last,
        title=_text(card, "title"),
        organization=_text(card, "org"),
        emails=tuple(_str(e.value) for e in card.contents.get("email", []) if _str(e.value)),
        phone_work=_str(work.value) if work else "",
        phone_mobile=_str(mobile.value) if mobile else "",
        street=_str(adr.value.street, ", ") if adr else "",
        city=_str(adr.value.city, ", ") if adr else "",
        region=_str(adr.value.region, ", ") if adr else "",
        postal_code=_str(adr.value.code, ", ") if adr else "",
        country=_str(adr.value.country, ", ") if adr else "",
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


def _add(card: Any, name: str, value: Any, types: str | None = None) -> Any:
    if value in ("", None):
        return None
    prop = card.add(name)
    prop.value = value
    if types:
        prop.type_param = types
    return prop


def _set_tel(card: Any, old: Any, number: str, types: str) -> None:
    """The chosen TEL changed in place (its TYPE=VOICE,PREF… kept), added, or removed."""
    if old is None:
        _add(card, "tel", number, types)
    elif number:
        old.value = number
    else:
        _remove(card, "tel", old)


def render(data: ContactFields, uid: str, crm_id: str, version: str = "3.0", base: str | None = None) -> str:
    """The card for these fields: `base` (the server's text) updated, or a new card."""
    if base:
        try:
            card = vobject.readOne(base)
        except Exception as e:
            raise Permanent(f"not a vCard: {e}") from e
        if getattr(card, "name", "").upper() != "VCARD":
            raise Permanent(f"not a vCard but a {getattr(card, 'name', '?')}")
        version = _text(card, "version") or version
    else:
        card = vobject.vCard()
        card.add("version").value = version
        card.add("uid").value = uid
    old_org = card.contents.get("org", [None])[0]
    old_emails = {_str(e.value).casefold(): e for e in card.contents.get("email", [])}
    for name in ("n", "fn", "title", "org", "email", "x-manager", CRM_ID, "rev"):
        _remove(card, name)
    _add(card, "n", vobject.vcard.Name(family=data.last_name, given=data.first_name))
    _add(card, "fn", data.display_name() or data.organization or uid)
    _add(card, "title", data.title)
    if data.organization:  # the first component; a unit after it stays
        rest = list(old_org.value[1:]) if old_org is not None and isinstance(old_org.value, list) else []
        prop = _add(card, "org", [data.organization, *rest])
        if old_org is not None and prop is not None:
            prop.params = {k: v for k, v in old_org.params.items() if k != "ENCODING"}
            prop.group = old_org.group
    for address in data.emails:  # INTERNET is vCard 3's word; 4.0 has no such type
        kept = old_emails.get(address.casefold())
        prop = _add(card, "email", address, None if kept else "INTERNET" if version == "3.0" else None)
        if kept is not None and prop is not None:  # its TYPE=HOME, PREF… and its group (Apple's label) stay
            prop.params = {k: v for k, v in kept.params.items() if k != "ENCODING"}
            prop.group = kept.group
    _set_tel(card, _tel(card, False), data.phone_work, "WORK")
    _set_tel(card, _tel(card, True), data.phone_mobile, "CELL")
    old_adr = _adr(card)
    if any((data.street, data.city, data.region, data.postal_code, data.country)):
        address = vobject.vcard.Address(
            street=data.street, city=data.city, region=data.region, code=data.postal_code, country=data.country
        )
        if old_adr is not None:
            old_adr.value = address  # in place: its TYPE and place in the card stay
        else:
            _add(card, "adr", address, "WORK")
    elif old_adr is not None:
        _remove(card, "adr", old_adr)
    _add(card, "x-manager", data.manager)
    _add(card, CRM_ID, crm_id)
    _add(card, "rev", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return str(card.serialize())
