"""Address normalisation and comparison (RULES.md "Addresses and direction").

An address is kept with its local part as written and its domain in Unicode, lower case
(IDNA `xn--` labels decoded): `normalize()`. Two addresses are the same when their
*canonical* forms are equal ignoring case, which `key()` gives: the canonical form also
unquotes a quoted local part (`"o'neil\\\\q"@example.org` is `o'neil\\q@example.org`), because
a parser re-quotes what a CRM form keeps plain. `spellings()` lists the forms a CRM may
hold the same address under, for connectors that search by pattern before comparing keys.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=8192)  # the same few domains come by dozens of times per message
def _domain_to_unicode(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            # keep an undecodable label as written rather than fail the message
            with contextlib.suppress(UnicodeError, ValueError):
                label = label.encode("ascii").decode("idna")
        labels.append(label)
    return ".".join(labels)


@lru_cache(maxsize=8192)
def normalize(address: str) -> str:
    """`Ann.Lee@XN--BCHER-KVA.example` → `Ann.Lee@bücher.example`; '' for no address."""
    address = (address or "").strip().strip("<>").strip()
    if not address:
        return ""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return address
    return f"{local}@{_domain_to_unicode(domain)}"


def _unquote(local: str) -> str:
    """The content of a wholly quoted local part (quoted-pairs resolved); anything else, or a
    quoted string that is not well formed, as written."""
    if len(local) < 2 or local[0] != '"' or local[-1] != '"':
        return local
    out: list[str] = []
    chars = iter(local[1:-1])
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, None)
            if nxt is None:  # `"abc\\"`: the last quote is escaped, the string never ends
                return local
            out.append(nxt)
        elif ch == '"':  # `"a"."b"` and the like: not one quoted string; compare as written
            return local
        else:
            out.append(ch)
    content = "".join(out)
    if content[:1] in ('"', "<", ">") or content[:1].isspace():
        return _quote(content)  # unquoted it would read differently (quoted, or trimmed): keep it quoted
    return content


def _quote(local: str) -> str:
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


# RFC 5322 atext: a local part of these (dot-separated, non-empty pieces) needs no quotes
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")


def _is_dot_atom(local: str) -> bool:
    return all(piece and all(c in _ATEXT or ord(c) > 127 for c in piece) for piece in local.split("."))


_NOT_IN_DOMAIN = re.compile(r"[\s\x00-\x1f\x7f]")  # blanks and control characters


@lru_cache(maxsize=8192)
def canonical(address: str) -> str | None:
    """`"o'neil\\\\q"@XN--BCHER-KVA.example` → `o'neil\\q@bücher.example`; None for text that is
    not an address (no `@`, an empty local part or domain, blanks or control characters in
    the domain). Idempotent: `canonical(canonical(a)) == canonical(a)`."""
    norm = normalize(address if isinstance(address, str) else "")
    local, sep, domain = norm.rpartition("@")
    if not sep or not local or not domain or _NOT_IN_DOMAIN.search(domain):
        return None
    local = _unquote(local)
    # `""@x`, `" "@x`, `"\x85"@x` (blanks kept quoted): nobody's mailbox
    bare = local[1:-1] if len(local) >= 2 and local[0] == local[-1] == '"' else local
    if not bare.strip():
        return None
    return f"{local}@{domain}"


def key(address: str) -> str:
    """The comparison key: canonical, case-folded ('' stays ''; a non-address normalised)."""
    return (canonical(address) or normalize(address)).casefold()


def spellings(address: str) -> tuple[str, ...]:
    """The normalised forms a CRM may keep this address under: as given, canonical (local part
    unquoted) and, when the local part needs or had quotes, quoted. Connectors that look up by
    pattern search all of them and then compare `key()`s, which is exact."""
    norm = normalize(address)
    canon = canonical(address)
    if canon is None:
        return (norm,) if norm else ()
    local, _, domain = canon.rpartition("@")
    forms = [norm, canon]
    if norm != canon or not _is_dot_atom(local):
        forms.append(f"{_quote(local)}@{domain}" if not local.startswith('"') else canon)
    return tuple(dict.fromkeys(forms))


def domain_of(address: str) -> str:
    """The normalised domain of an address, '' when it has none."""
    _, sep, domain = normalize(address).rpartition("@")
    return domain if sep else ""


def in_domain(address: str, domain: str) -> bool:
    """The address's domain is `domain` or a subdomain of it."""
    mine = domain_of(address)
    want = _domain_to_unicode(domain)
    return bool(mine) and (mine == want or mine.endswith("." + want))


def matches_any(address: str, patterns: Iterable[str]) -> bool:
    """Address patterns as config writes them: exact, `*@bank.example` globs, or `@domain`."""
    k = key(address)
    for pattern in patterns:
        p = pattern.strip()
        if p.startswith("@"):
            if in_domain(address, p[1:]):
                return True
        elif any(c in p for c in "*?["):
            if fnmatch.fnmatchcase(k, key(p)):
                return True
        elif k == key(p):
            return True
    return False
