"""Who looks at the console, and what they may see.

The web app's sign-in middleware sets `request.state.principal` (gateway.web.auth's
`Principal`: a name, a role and the mailboxes of a user); the console needs only what
`Viewer` names, so it does not depend on how sign-in works. An admin sees every mailbox, a
user the items of their own mailboxes (`sees(source, account)`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response


class Viewer(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    def sees(self, source: str, account: str) -> bool: ...


def viewer_of(request: Request) -> Viewer | None:
    return getattr(request.state, "principal", None)


def is_admin(who: Viewer) -> bool:
    return str(who.role) == "admin"


def csrf_token(request: Request) -> str:
    """The token the sign-in module issues for this session, for the forms' hidden field; the
    middleware refuses a POST with a session cookie that does not carry it."""
    issue: Callable[[Request], str] | None = getattr(_auth(), "csrf_token", None)
    return issue(request) if issue is not None else str(getattr(request.state, "csrf_token", ""))


def _auth() -> Any:
    try:
        return importlib.import_module("gateway.web.auth")
    except ImportError:  # a web app without sign-in: the middleware in front sets what it needs
        return None


def sign_in_first(request: Request) -> Response:
    """Where a request without a signed-in person goes: the sign-in page, back here after."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def sees_message(gw: Any, who: Viewer, message_pk: int) -> bool:
    """Whether any copy of the message lies in a mailbox the viewer may see."""
    if is_admin(who):
        return True
    return any(who.sees(loc.ref.source, loc.ref.account) for loc in gw.ledger.locations_of(message_pk))
