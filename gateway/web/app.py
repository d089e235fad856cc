"""The web face of the gateway (served by `run` when `web.listen` is set): assembly only.

GET /              an HTML overview (sources, folders, counts, rule errors)   [signed in]
GET /status.json   the `status --json` document                               [signed in]
GET /review.json   messages waiting for a person (`review list --json`)       [signed in]
GET /quarantine.json  messages that failed for good (`quarantine list --json`) [signed in]
GET /metrics       Prometheus text format, read from the ledger at scrape time [open]
GET /healthz       200 while the gateway runs                                 [open]
GET|POST /signin, POST /signout   the sign-in form (gateway/web/auth/signin.py)
/api/v1/...        the JSON API (gateway/web/api/, described at /api/v1/openapi.json)
/console/...       the console's pages (gateway/web/console/)                 [signed in]
GET /outlook/manifest.xml, /outlook/pane.html, /static/...  the Outlook add-in, styles, scripts [open]

"Signed in" means a session (web.users) or an API token; with neither configured and
`web.listen` on a loopback address, nobody signs in and everyone is admin, as the page was
before it had users (gateway/web/auth/access.py); then only this host's names are served and a
write must come from its own pages or be JSON (gateway/web/auth/origin.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin import operations as admin
from gateway.admin.status import status_doc
from gateway.web import api, console, outlook
from gateway.web.api.common import off_loop, scope
from gateway.web.api.messages import visible_status
from gateway.web.auth import Access, AuthMiddleware, oidc
from gateway.web.auth import signin as signin_pages
from gateway.web.auth.origin import OpenModeHosts
from gateway.web.metrics import registry_for
from gateway.web.status_page import page


def make_app(gw: Any, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The app; `extra_routes` (the console's pages) come first and get the same sign-in."""
    registry = registry_for(gw)
    access = Access(gw.config)

    async def index(request: Request) -> Response:
        seen = scope(request)
        doc = visible_status(await off_loop(status_doc, gw.config, gw.ledger), seen)
        _, review = await off_loop(admin.queue_page, gw, "review", seen, 0)
        _, quarantined = await off_loop(admin.queue_page, gw, "quarantined", seen, 0)
        return HTMLResponse(page(doc, review, quarantined))

    async def status(request: Request) -> Response:
        return JSONResponse(visible_status(await off_loop(status_doc, gw.config, gw.ledger), scope(request)))

    async def review(request: Request) -> Response:
        return JSONResponse({"review": await off_loop(admin.listing, gw, "review", scope(request))})

    async def quarantine(request: Request) -> Response:
        return JSONResponse({"quarantined": await off_loop(admin.listing, gw, "quarantined", scope(request))})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    signed_in = Starlette(
        routes=[
            *extra_routes,
            Route("/", index),
            Route("/status.json", status),
            Route("/review.json", review),
            Route("/quarantine.json", quarantine),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            *signin_pages.routes(access),
            *oidc.routes(access),
            api.mount(gw),
            *console.routes(gw),
        ],
        middleware=[Middleware(AuthMiddleware, access=access)],
    )
    # What Outlook fetches without a session: the add-in's manifest and pane, and the styles,
    # scripts and icons (the pane asks /api/v1/me who is signed in).
    return Starlette(
        routes=[
            *outlook.routes(gw),
            Mount("/static", StaticFiles(packages=[("gateway.web", "static")]), name="static"),
            Mount("", app=signed_in),
        ],
        middleware=[Middleware(OpenModeHosts, access=access)],
    )


def serve(gw: Any, listen: str, stop: Any) -> None:
    """Run the web face until `stop` is set (called in its own thread by `Gateway.run`)."""
    import threading

    import uvicorn

    host, _, port = listen.rpartition(":")
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(gw),
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )

    def exit_when_stopped() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=exit_when_stopped, daemon=True).start()
    server.run()
