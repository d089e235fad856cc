"""The "Sync conflicts" page: the contact sync's fields changed on both sides, with both
values, and a form per conflict to keep the CRM's or the mailbox's (the function behind
`POST /api/v1/pimsync/conflicts/{id}/resolve` and `pimsync conflicts --resolve`). A user sees
their own address books' conflicts; the choice is applied at the book's next round."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import pimsync as conflicts
from gateway.errors import GatewayError
from gateway.web.console import render
from gateway.web.console.paging import PER_PAGE, back_to, offset_of, paging_of, said_in
from gateway.web.console.viewer import scope_of, sign_in_first, viewer_of

Handler = Callable[[Request], Awaitable[Response]]


def page(gw: Any) -> Handler:
    async def show(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        offset = offset_of(request)
        everything = request.query_params.get("state") == "all"
        found = await run_in_threadpool(
            conflicts.conflict_page,
            gw.config,
            gw.ledger.pim(),
            scope_of(who),
            open_only=not everything,
            limit=PER_PAGE,
            offset=offset,
        )
        items = [conflicts.conflict_doc(c) for c in found.conflicts]
        return render.page(
            request,
            "console/conflicts.html",
            items=items,
            everything=everything,
            said=said_in(request),
            paging=paging_of(offset, found.total),
        )

    return show


def resolve(gw: Any) -> Handler:
    async def handler(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        form = await request.form()
        keep = str(form.get("keep") or "")
        pk = request.path_params["id"]
        try:
            done = await run_in_threadpool(conflicts.resolve, gw.config, gw.ledger.pim(), pk, keep, who.name, scope_of(who))
        except GatewayError as exc:  # not theirs, unknown, already settled: in words
            return back_to("/console/conflicts", failed=str(exc))
        return back_to("/console/conflicts", done=f"conflict {pk} ({done.field}): {conflicts.outcome(done)}")

    return handler
