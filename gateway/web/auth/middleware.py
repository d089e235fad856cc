"""Sets `request.state.principal` (and `.session`) for every request, and keeps out who may not
come in: pages and API need a principal, except the open paths (`/metrics`, `/healthz`, the
sign-in form); a browser's write needs its CSRF token (gateway/web/auth/csrf.py); with nobody
signed in, a write must come from this server's own pages or be JSON (gateway/web/auth/origin.py)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from gateway.errors import GatewayError
from gateway.web.auth.access import ANONYMOUS, Access
from gateway.web.auth.csrf import UNSAFE, matches, token_given
from gateway.web.auth.origin import anonymous_may_write

OPEN_PATHS = frozenset({"/metrics", "/healthz", "/signin", "/signin/oidc", "/signin/oidc/callback"})


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.endswith(".json")


def refuse(request: Request, status: int, words: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": words}, status_code=status)
    return PlainTextResponse(words, status_code=status)


class AuthMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, access: Access) -> None:
        super().__init__(app)
        self.access = access

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            caller = self.access.caller(request)
        except GatewayError as exc:  # an unreadable tokens file: say so rather than let anyone in
            return refuse(request, 500, str(exc))
        request.state.principal = caller.principal
        request.state.session = caller.session
        path = request.url.path
        if path not in OPEN_PATHS and caller.principal is None:
            if request.headers.get("authorization", "").lower().startswith("bearer "):
                return refuse(request, 401, "the API token is not known (make one with `crm-gateway token add NAME`)")
            if self.access.nobody_configured():
                return refuse(
                    request,
                    403,
                    "no web.users or API tokens are configured and web.listen is not a loopback address: "
                    "add a user (`crm-gateway user add`) or listen on 127.0.0.1",
                )
            if request.method == "GET" and not _wants_json(request):
                return RedirectResponse("/signin?next=" + quote(path), status_code=303)
            return refuse(request, 401, "sign in first (POST /signin) or send an API token (Authorization: Bearer …)")
        p = caller.principal
        anonymous = p is not None and p.name == ANONYMOUS and not p.via_token and caller.session is None
        if request.method in UNSAFE and anonymous and not anonymous_may_write(request, self.access.web):
            return refuse(
                request,
                403,
                "nobody signs in here, so a write must come from this server's own pages, or be JSON "
                "(Content-Type: application/json) sent from no other site",
            )
        guarded = request.method in UNSAFE and caller.session is not None and path != "/signin"
        if guarded and caller.session is not None and not matches(caller.session.csrf, await token_given(request)):
            return refuse(request, 403, "the form is stale or came from another site: reload the page and try again")
        return await call_next(request)
