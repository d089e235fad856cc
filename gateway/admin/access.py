"""Who may use the console and the API: password hashes for `web.users` and API tokens.

`crm-gateway user add` and `token add` and the web layer's sign-in call these functions, so a
hash made on the command line is checked by the same code that made it.

Passwords: argon2id (argon2-cffi), stored in the config as `password_hash`. API tokens: random,
shown once; the tokens file (`web.tokens_file`, JSON, mode 0600) keeps only their sha256, which
is enough for a secret of 256 random bits (no dictionary to guess from, unlike a password).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.admin.kept_file import KeptFile
from gateway.errors import Permanent

ROLES = ("admin", "user")
TOKEN_PREFIX = "cgw_"  # recognisable in a log or a secret scanner
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise Permanent("the password must have at least 8 characters")
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Permanent(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
    return role


def user_entry(name: str, password: str, role: str, addresses: list[str]) -> dict[str, object]:
    """The `web.users` entry for a person, as the config holds it."""
    if not name or any(c.isspace() or c == ":" for c in name):
        raise Permanent(f"a user name has no blanks or colons (got {name!r})")
    for a in addresses:
        if "@" not in a:
            raise Permanent(f"not an address: {a!r}")
    return {"name": name, "password_hash": hash_password(password), "role": check_role(role), "addresses": list(addresses)}


def user_yaml(entry: dict[str, object]) -> str:
    """The entry as YAML to paste under `web: users:`."""
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)


# ---- API tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    """One API token as stored: its name (the principal it signs in as), its role and
    addresses (as a `web.users` entry's), and the sha256 of the token."""

    name: str
    sha256: str
    role: str
    addresses: tuple[str, ...]
    created_at: str
    expires_at: str = ""  # ISO time it stops working; "" never (until `token remove`)
    # made for a web user: it acts as that user as they are now (their role and addresses at
    # each request), and stops when they are removed; else `role` and `addresses` above
    of_user: bool = False

    def expired(self, now: datetime | None = None) -> bool:
        if not self.expires_at:
            return False
        try:
            end = datetime.fromisoformat(self.expires_at)
        except ValueError:
            return True  # a hand edit that is no time: ended, rather than open for ever
        return (end if end.tzinfo else end.replace(tzinfo=UTC)) <= (now or datetime.now(UTC))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The tokens file. Read again whenever it changed, so a token added or removed by
    `crm-gateway token` while the gateway runs counts at the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = KeptFile(path, _parse_tokens, "API tokens")

    def records(self) -> list[TokenRecord]:
        return self._file.read()

    def add(self, name: str, role: str, addresses: list[str], days: float | None = None, *, of_user: bool = False) -> str:
        """Make a token for `name` (replacing its earlier one), working `days` days (None: until
        removed), and return it: the only time it is seen. `of_user`: `name` is a web user."""
        check_role(role)
        if days is not None and days <= 0:
            raise Permanent(f"--days must be more than 0 (got {days:g})")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = (now + timedelta(days=days)).isoformat(timespec="seconds") if days is not None else ""
        kept = [r for r in self.records() if r.name != name]
        kept.append(TokenRecord(name, _digest(token), role, tuple(addresses), now.isoformat(), expires, of_user))
        self._write(kept)
        return token

    def remove(self, name: str) -> bool:
        records = self.records()
        kept = [r for r in records if r.name != name]
        self._write(kept)
        return len(kept) != len(records)

    def check(self, token: str) -> TokenRecord | None:
        want = _digest(token)
        for r in self.records():
            if hmac.compare_digest(r.sha256, want):
                return None if r.expired() else r
        return None

    def _write(self, records: list[TokenRecord]) -> None:
        self._file.write(json.dumps({"tokens": [asdict(r) for r in records]}, indent=2))


def _parse_tokens(text: str) -> list[TokenRecord]:
    return [
        TokenRecord(
            r["name"],
            r["sha256"],
            r["role"],
            tuple(r.get("addresses") or ()),
            r.get("created_at", ""),
            r.get("expires_at", ""),
            bool(r.get("of_user", False)),
        )
        for r in json.loads(text).get("tokens", [])
    ]
