"""The JSON API under `/api/v1/` (gateway/web/api/openapi.py describes it).

- `common`: the asker, bodies, errors as JSON; `messages`: status and messages;
  `decisions`: review, quarantine, link and the CRM search; `reconcile`: the
  last run and a run; `freebusy`: the attendees' free/busy; `pimsync`: the contact sync's conflicts; `openapi`: the document.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from gateway.web.api import decisions, freebusy, messages, pimsync, reconcile
from gateway.web.api.common import error
from gateway.web.api.openapi import DOCUMENT

PREFIX = "/api/v1"


def route_table(gw: Any) -> list[tuple[str, str, Any]]:
    """(method, path under the prefix, endpoint) of every route."""

    async def openapi(_: Request) -> Response:
        return JSONResponse(DOCUMENT)

    return [
        *messages.routes_for(gw),
        *decisions.routes_for(gw),
        *reconcile.routes_for(gw),
        *freebusy.routes_for(gw),
        *pimsync.routes_for(gw),
        ("GET", "/openapi.json", openapi),
    ]


def documented_path(path: str) -> str:
    """A Starlette path as OpenAPI writes it: `/review/{id:int}/resolve` → `/api/v1/review/{id}/resolve`."""
    return PREFIX + re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def mount(gw: Any) -> Mount:
    async def unknown(_: Request) -> Response:
        return error(404, f"no such API route; the routes are listed at {PREFIX}/openapi.json")

    routes = [Route(path, fn, methods=[method]) for method, path, fn in route_table(gw)]
    routes.append(Route("/{rest:path}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]))
    return Mount(PREFIX, routes=routes)
