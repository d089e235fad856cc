"""Address normalisation and comparison (RULES.md "Addresses and direction").

An address is kept with its local part as written and its domain in Unicode, lower case
(IDNA `xn--` labels decoded). Two addresses are the same when their normalised forms are
equal ignoring case, which `key()` gives.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=8192)  # the same few domains come by dozens of times per message
def _domain_to_unicode(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except (UnicodeError, ValueError):
                pass  # keep an undecodable label as written rather than fail the message
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


def key(address: str) -> str:
    """The comparison key: normalised, case-folded."""
    return normalize(address).casefold()


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
