"""`reconcile` through the API, for admins: the last run's counts, and a run (with `fix`) that
calls the same function as `crm-gateway reconcile` (gateway/admin/reconcile)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.admin.reconcile import last_result, reconcile
from gateway.web.api.common import BadRequest, body, endpoint, off_loop, require_admin


def _since(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRequest("`since` is a date or time as ISO 8601 text, e.g. 2026-12-01")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"`since` is not an ISO 8601 date or time: {value!r}") from None


def _text(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRequest(f"`{name}` is text")
    return value


def routes_for(gw: Any) -> list[tuple[str, str, Any]]:
    @endpoint
    async def last(request: Request) -> Response:
        require_admin(request)
        found = await off_loop(last_result, gw.ledger)
        if found is None:
            return JSONResponse({"at": None, "counts": {}})
        counts, at = found
        return JSONResponse({"at": at.isoformat(), "counts": counts})

    @endpoint
    async def run(request: Request) -> Response:
        require_admin(request)
        doc = await body(request)
        fix = doc.get("fix", False)
        if not isinstance(fix, bool):
            fix = str(fix).lower() in ("1", "true", "yes", "on")  # a form's checkbox
        report = await off_loop(reconcile, gw, _text(doc, "source"), _text(doc, "folder"), _since(doc.get("since")), fix)
        return JSONResponse(report.to_json())

    return [("GET", "/reconcile", last), ("POST", "/reconcile", run)]
