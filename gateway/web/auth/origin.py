"""Where a write comes from, when nobody signs in (open mode: loopback, no web.users, no API
token; gateway/web/auth/access.py). There is no session and so no CSRF token: a page of another
site could post a plain form to the console, and a name it controls that resolves to 127.0.0.1
(DNS rebinding) could read the pages. So in open mode:
- a write is taken from the page's own origin (the `Origin` header, or `Sec-Fetch-Site:
  same-origin` with no `Origin` or `Origin: null`), or as JSON without a cross-site `Origin` (another site's page cannot send
  JSON without the browser asking first, and this server never says yes);
- only requests naming this host are served (Starlette's TrustedHostMiddleware): localhost,
  127.0.0.1, [::1], the host of `web.listen`, the host of `web.public_url`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import WebConfig
from gateway.web.auth.access import Access

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origins(request: Request, web: WebConfig) -> frozenset[str]:
    """The origins this server answers at: as the request reached it, and `web.public_url`."""
    mine = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    if web.public_url:
        mine.add(_origin_of(web.public_url))
    return frozenset(mine)


def same_origin(request: Request, web: WebConfig) -> bool:
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() in own_origins(request, web):
        return True
    # The console's pages are sent with `Referrer-Policy: no-referrer`, under which a browser
    # posts their forms with `Origin: null`; its `Sec-Fetch-Site` (which no page can set) says
    # where the form came from.
    return origin in (None, "null") and request.headers.get("sec-fetch-site") == "same-origin"


def cross_site(request: Request, web: WebConfig) -> bool:
    if request.headers.get("sec-fetch-site") in {"cross-site", "same-site"}:
        return True
    origin = request.headers.get("origin")
    return origin is not None and not same_origin(request, web)  # another site's, or "null" from anywhere else


def anonymous_may_write(request: Request, web: WebConfig) -> bool:
    if same_origin(request, web):
        return True
    is_json = request.headers.get("content-type", "").startswith("application/json")
    return is_json and not cross_site(request, web)


def trusted_hosts(web: WebConfig) -> list[str]:
    hosts = list(LOOPBACK_HOSTS)
    listen = web.listen.rpartition(":")[0].strip("[]")
    if listen:
        hosts.append(f"[{listen}]" if ":" in listen else listen)
    if web.public_url:
        public = urlsplit(web.public_url).hostname
        if public:
            hosts.append(f"[{public}]" if ":" in public else public)
    return sorted({h.lower() for h in hosts})


class OpenModeHosts:
    """TrustedHostMiddleware while nobody signs in; once a user or a token is configured, their
    sign-in guards the pages, and any host (a proxy's) is served."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access
        self.guarded = TrustedHostMiddleware(app, allowed_hosts=trusted_hosts(access.web), www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.access.open_to_all():
            await self.guarded(scope, receive, send)
        else:
            await self.app(scope, receive, send)
