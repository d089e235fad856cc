"""The contact sync's conflicts through the API: a page of them (a user sees their own address
books'), and a person's choice of the value to keep (gateway/admin/pimsync.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.admin import pimsync as conflicts
from gateway.web.api.common import BadRequest, body, endpoint, field, off_loop, page_params, principal, scope


def routes_for(gw: Any) -> list[tuple[str, str, Any]]:
    @endpoint
    async def listing(request: Request) -> Response:
        limit, offset = page_params(request)
        state = request.query_params.get("state", "open")
        if state not in ("open", "all"):
            raise BadRequest(f"`state` is `open` or `all` (got {state!r})")
        book = request.query_params.get("book") or None
        page = await off_loop(
            conflicts.conflict_page,
            gw.config,
            gw.ledger.pim(),
            scope(request),
            book=book,
            open_only=state == "open",
            limit=limit,
            offset=offset,
        )
        docs = [conflicts.conflict_doc(c) for c in page.conflicts]
        return JSONResponse({"total": page.total, "limit": limit, "offset": offset, "conflicts": docs})

    @endpoint
    async def resolve(request: Request) -> Response:
        who = principal(request)
        keep = field(await body(request), "keep")
        done = await off_loop(
            conflicts.resolve, gw.config, gw.ledger.pim(), request.path_params["id"], keep, who.name, scope(request)
        )
        return JSONResponse(conflicts.conflict_doc(done))

    return [("GET", "/pimsync/conflicts", listing), ("POST", "/pimsync/conflicts/{id:int}/resolve", resolve)]
