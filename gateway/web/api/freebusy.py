"""`GET /api/v1/freebusy`: the attendees' free/busy and their common free time, for any signed-in
person (a `user` as well as an admin: it is availability, not content; Exchange shows it to the
whole organisation). The same function as `crm-gateway freebusy` (gateway/admin/freebusy.py);
an address that could not be answered is in the answer with its reason (`complete` false)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.admin.freebusy import answerers, ask
from gateway.web.api.common import BadRequest, endpoint, int_param, off_loop, principal


def _when(value: str | None, name: str) -> datetime:
    if not value:
        raise BadRequest(f"give `{name}` (an ISO 8601 date or time, e.g. 2026-12-07T09:00:00+01:00)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"`{name}` is not an ISO 8601 date or time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def routes_for(gw: Any) -> list[tuple[str, str, Any]]:
    @endpoint
    async def freebusy(request: Request) -> Response:
        principal(request)  # signed in, whatever the role
        q = request.query_params
        addresses = q.getlist("address")
        start, end = _when(q.get("from"), "from"), _when(q.get("to"), "to")
        interval = int_param(q.get("interval"), "interval", 30)
        report = await off_loop(ask, answerers(gw), addresses, start, end, interval)
        return JSONResponse(report.to_json())

    return [("GET", "/freebusy", freebusy)]
