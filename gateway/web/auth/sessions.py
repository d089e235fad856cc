"""Signed session cookies (itsdangerous): who signed in, when, and their CSRF token.

The cookie holds no secret of the person's: their name, a fingerprint of their password hash
(a changed password ends every session of theirs) and a random CSRF token, signed with the key
in `web.secret_file` and time-stamped. It is HttpOnly, SameSite=Lax, and Secure when the page
was asked for over https (behind a proxy: as uvicorn reports it from X-Forwarded-Proto).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "crm_gateway_session"


@dataclass(frozen=True)
class Session:
    name: str
    fingerprint: str
    csrf: str


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def load_secret(path: Path) -> bytes:
    """The signing key; made on first use (0600), so sessions survive a restart."""
    try:
        data = path.read_bytes().strip()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    os.replace(tmp, path)
    return key


class Sessions:
    def __init__(self, secret: bytes, max_age_seconds: int) -> None:
        self.secret = secret
        self._signer = URLSafeTimedSerializer(secret, salt="crm-gateway-session")
        self.max_age = max_age_seconds

    def read(self, request: Request) -> Session | None:
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data = self._signer.loads(value, max_age=self.max_age)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("n", "f", "c")):
            return None
        return Session(data["n"], data["f"], data["c"])

    def start(self, request: Request, response: Response, name: str, password_hash: str) -> Session:
        session = Session(name, fingerprint(password_hash), secrets.token_urlsafe(32))
        response.set_cookie(
            COOKIE,
            self._signer.dumps({"n": session.name, "f": session.fingerprint, "c": session.csrf}),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        return session

    @staticmethod
    def end(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
