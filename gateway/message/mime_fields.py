"""Structured header fields: addresses (display name, normalised address), dates (Date and
Received) and Message-IDs, each read leniently from raw values and never raising.
"""

from __future__ import annotations

import email.policy
import email.utils
import functools
import re
from datetime import UTC, datetime, timedelta, timezone

from gateway.message import addresses
from gateway.message.mime_text import CONTROL, decode_header_value, fix_str, fold_breaks, unfold

__all__ = ["message_ids", "parse_addresses", "parse_date", "received_date"]

_MSGID = re.compile(r"<([^<>]*)>")
# a host name (IDN allowed) or an address literal; anything else is what a broken phrase left
# behind, e.g. `_victim@evil.example?=` from an encoded word with a raw ':' in it
_DOMAIN = re.compile(r"(?:\[[^\[\]\s]+\]|[^\s@?=/\\\"'(),;:<>\[\]]+)\Z")
_REGISTRY_MAX = 16 * 1024  # the stdlib header registry needs ~0.4 ms per address: long lists go
# through email.utils.getaddresses instead


def parse_addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, normalised address) from raw address-header values.

    The stdlib header registry first (groups, RFC 2047 in and around quotes, a missing
    '>'); `email.utils.getaddresses` when the registry raises. Entries without a usable
    `local@domain` are dropped."""
    out: list[tuple[str, str]] = []
    for raw in values:
        text = unfold(fix_str(raw))
        if text:
            out.extend(_addresses_cached(text) if len(text) <= _CACHED_MAX else _addresses(text))
    return out


# The same mailbox headers come again and again (the owner's own address, regular
# correspondents), and the header registry needs ~0.3 ms for each: results are cached.
_CACHED_MAX = 1024


def _addresses(text: str) -> tuple[tuple[str, str], ...]:
    try:
        if len(text) > _REGISTRY_MAX:
            raise ValueError("too long for the header registry")
        pairs = [(a.display_name, a.addr_spec) for a in _registry(text)]
    except Exception:
        pairs = [(decode_header_value(n), a) for n, a in email.utils.getaddresses([text])]
    out = []
    for name, addr in pairs:
        addr = (addr or "").strip().strip("<>")
        local, at, domain = addr.rpartition("@")
        if not at or not local or not _DOMAIN.match(domain):
            continue
        out.append((fold_breaks(CONTROL.sub("", fix_str(name))).strip(), addresses.normalize(addr)))
    return tuple(out)


_addresses_cached = functools.lru_cache(maxsize=4096)(_addresses)


def _registry(text: str):
    header = email.policy.default.header_factory("To", text)
    return header.addresses


# ---------------------------------------------------------------- dates


def parse_date(value: str) -> tuple[datetime, int] | None:
    """(aware UTC datetime, original offset in minutes), or None when unusable."""
    try:
        parts = email.utils.parsedate_tz(unfold(value))
        if not parts:
            return None
        offset = parts[9] or 0
        year = parts[0]
        if not 1970 <= year <= 2200 or abs(offset) > 24 * 3600:
            return None
        local = datetime(*parts[:6], tzinfo=timezone(timedelta(seconds=offset)))
        return local.astimezone(UTC), offset // 60
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


def received_date(values: list[str]) -> tuple[datetime, int] | None:
    """The date of the newest (topmost) Received header that has a usable one."""
    for value in values:
        _, sep, tail = value.rpartition(";")
        if sep:
            parsed = parse_date(tail)
            if parsed:
                return parsed
    return None


def message_ids(value: str) -> list[str]:
    """Every `<id>` in a header value, whitespace inside removed, in order, deduplicated."""
    found: dict[str, None] = {}  # ordered set: References can hold thousands of ids
    for m in _MSGID.finditer(value):
        mid = "<" + "".join(m.group(1).split()) + ">"
        if mid != "<>":
            found[mid] = None
    seen = list(found)
    if not seen:
        bare = re.sub(r"\s+", "", value)
        if "@" in bare and "<" not in bare and ">" not in bare:
            seen.append(f"<{bare}>")
    return seen
