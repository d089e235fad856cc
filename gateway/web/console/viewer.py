"""Who looks at the console, and what they may see.

The web app's sign-in middleware (gateway/web/auth/) sets `request.state.principal`: a name, a
role and the mailboxes they own. An admin sees every mailbox, a user the items of their own;
the console hands `Principal.visibility()` to the gateway.admin functions, which filter and
refuse as they do for the API."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin.scope import Visibility
from gateway.web.auth import Principal, csrf_token

__all__ = ["Principal", "csrf_token", "scope_of", "sign_in_first", "viewer_of"]


def viewer_of(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def scope_of(who: Principal) -> Visibility | None:
    """What the admin functions let this person see (None: everything)."""
    return who.visibility()


def sign_in_first(request: Request) -> Response:
    """Where a request without a signed-in person goes: the sign-in page, back here after."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
