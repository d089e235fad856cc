"""Who a request comes from: a signed-in person (session cookie), an API token (Bearer), or,
on a loopback address with no user and no token configured, everyone as admin (the status
page as it always was). `Access` answers it; the middleware asks it for every request."""

from __future__ import annotations

import functools
import ipaddress
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from starlette.requests import Request

from gateway.admin.access import TokenStore, hash_password, password_matches
from gateway.admin.users import UserStore, all_users
from gateway.config import Config, WebConfig
from gateway.config.model import WebUser
from gateway.web.auth.principal import Principal, Role, principal_for
from gateway.web.auth.sessions import Session, Sessions, fingerprint, load_secret

ANONYMOUS = "anonymous"


def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Caller:
    principal: Principal | None
    session: Session | None  # set for a signed-in browser: its CSRF token guards its writes


# Password guessing: after this many wrong passwords for one name within the window, that name
# is refused until the oldest of them leaves the window (the counts live in this process only).
TRIES = 10
TRIES_WINDOW = 15 * 60.0


class Access:
    def __init__(self, config: Config) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._failures_lock = threading.Lock()  # sign-ins run in worker threads, several at once
        self.config = config
        self.web = config.web or WebConfig()
        self.tokens = TokenStore(config.resolve(self.web.tokens_file))
        self.user_store = UserStore(config.resolve(self.web.users_file))
        self.sessions = Sessions(load_secret(config.resolve(self.web.secret_file)), int(self.web.session_hours * 3600))

    def users(self) -> list[WebUser]:
        """The config's `web.users` and those `crm-gateway user add` wrote (read again when changed)."""
        return all_users(self.web.users, self.user_store)

    def user(self, name: str) -> WebUser | None:
        return next((u for u in self.users() if u.name == name), None)

    def nobody_configured(self) -> bool:
        return not self.users() and not self.tokens.records()

    def open_to_all(self) -> bool:
        """No user and no token configured, on loopback: nobody signs in (as before sign-in existed)."""
        return self.nobody_configured() and is_loopback(self.web.listen)

    def wait_before_trying(self, name: str) -> float:
        """Seconds until `name` may try a password again (0: now)."""
        with self._failures_lock:
            now = time.monotonic()
            tries = self._failures.get(name)
            while tries and now - tries[0] > TRIES_WINDOW:
                tries.popleft()
            return 0.0 if not tries or len(tries) < TRIES else TRIES_WINDOW - (now - tries[0])

    def sign_in(self, name: str, password: str) -> WebUser | None:
        """Check the password (argon2: slow on purpose, so call it off the event loop)."""
        found = self._check_password(name, password)
        with self._failures_lock:
            if found is None:
                if len(self._failures) > 10_000:  # names made up by the thousand: forget the stale ones
                    now = time.monotonic()
                    self._failures = {n: t for n, t in self._failures.items() if t and now - t[-1] <= TRIES_WINDOW}
                self._failures.setdefault(name, deque(maxlen=TRIES)).append(time.monotonic())
            else:
                self._failures.pop(name, None)
        return found

    def _check_password(self, name: str, password: str) -> WebUser | None:
        user = self.user(name)
        if user is None or user.password_hash is None:  # unknown, or signs in through OIDC only
            password_matches(_dummy_hash(), password)  # as slow as a wrong password: names are not probed
            return None
        return user if password_matches(user.password_hash, password) else None

    def by_claim(self, value: str, claim: str) -> WebUser | None:
        """The user an OpenID Connect provider's claim names: by address, else by name, but
        never by name for the `email` claim (an address `root` must not be the user root)."""
        key = value.strip().lower()
        found = next((u for u in self.users() if key in {a.lower() for a in u.addresses}), None)
        return found or (self.user(value.strip()) if claim != "email" else None)

    def principal_of(self, user: WebUser) -> Principal:
        return principal_for(self.config, user.name, user.role, user.addresses)

    def caller(self, request: Request) -> Caller:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            record = self.tokens.check(auth[7:].strip())
            if record is None:
                return Caller(None, None)
            now = self.user(record.name) if record.of_user else None
            if record.of_user and now is None:  # its person was removed: so is what acts as them
                return Caller(None, None)
            p = (
                self.principal_of(now)
                if now is not None
                else principal_for(self.config, record.name, record.role, record.addresses)
            )
            return Caller(Principal(p.name, p.role, p.mailboxes, p.crm_users, via_token=True), None)
        session = self.sessions.read(request)
        if session is not None:
            user = self.user(session.name)
            if user is not None and fingerprint(user.password_hash or "") == session.fingerprint:
                return Caller(self.principal_of(user), session)
        if self.open_to_all():
            return Caller(Principal(ANONYMOUS, Role.ADMIN, frozenset()), None)
        return Caller(None, None)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))
