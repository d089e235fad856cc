"""Cross-site request forgery: a write from a signed-in browser must carry its session's token.

Every POST/PUT/PATCH/DELETE that comes with a session cookie carries the token as the form
field `csrf_token` or the header `X-CSRF-Token`; an API token (Bearer) needs none, a browser
never sends one by itself. With nobody signed in (loopback, no users) there is no token: a
write must come from this server's own pages or be JSON from no other site
(gateway/web/auth/origin.py), and the API takes only JSON bodies.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """The token to put in a form of the signed-in person's page ("" when nobody signed in)."""
    session = getattr(request.state, "session", None)
    return session.csrf if session is not None else ""


async def token_given(request: Request) -> str:
    """The token the request carries: the header, else the form field."""
    header = request.headers.get(HEADER)
    if header:
        return header
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        await request.body()  # read whole first: the endpoint after the middleware reads it again
        form = await request.form()
        value = form.get(FIELD)
        return value if isinstance(value, str) else ""
    return ""


def matches(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())
