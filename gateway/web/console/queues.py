"""The review queue and the quarantine: what waits for a person, and their decisions.

Each decision is a POSTed form carrying the CSRF token, and calls the gateway.admin function
the command line calls (`review resolve`, `review create`, `quarantine retry`); the page then
says in words what happened (303 back to the list, the outcome in the query)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import operations as admin
from gateway.crm.base import PARTY_KINDS
from gateway.errors import GatewayError, Permanent
from gateway.web.console import render
from gateway.web.console.paging import PER_PAGE, back_to, offset_of, paging_of, said_in
from gateway.web.console.viewer import Principal, scope_of, sign_in_first, viewer_of

Handler = Callable[[Request], Awaitable[Response]]


def visible_items(gw: Any, who: Principal, state: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """A page of `review list` / `quarantine list` (oldest first), of the mailboxes the viewer
    sees, and how many there are in all."""
    return admin.queue_page(gw, state, scope_of(who), PER_PAGE, offset)


def review_page(gw: Any) -> Handler:
    async def review(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        offset = offset_of(request)
        items, total = await run_in_threadpool(visible_items, gw, who, "review", offset)
        return render.page(
            request, "console/review.html", items=items, kinds=PARTY_KINDS, said=said_in(request), paging=paging_of(offset, total)
        )

    return review


async def _decide(gw: Any, request: Request, back: str, act: Callable[[Principal, Any], str]) -> Response:
    """Run one decision for the signed-in viewer (the admin functions refuse what they may not
    see or pick); say what it did, or why not."""
    who = viewer_of(request)
    if who is None:
        return sign_in_first(request)
    form = await request.form()
    try:
        said = await run_in_threadpool(act, who, form)
    except GatewayError as exc:  # refused (gone, not theirs, no longer in review) or the CRM was not reached: in words
        return back_to(back, failed=str(exc))
    return back_to(back, done=said)


def resolve(gw: Any) -> Handler:
    async def handler(request: Request) -> Response:
        pk = request.path_params["id"]

        def act(who: Principal, form: Any) -> str:
            record = str(form.get("record") or "").strip()
            if not record:
                raise Permanent("pick a record, or search for one")
            # A record picked from the CRM search is the person's choice, as `--force` is on the
            # command line: the search showed what it is. A typed KIND:ID is not forced.
            force = form.get("searched") == "1"
            done = admin.resolve_review(gw, str(pk), to=[record], force=force, scope=scope_of(who))
            return f"message {pk} attached to {record}: {done.state}"

        return await _decide(gw, request, "/console/review", act)

    return handler


def create(gw: Any) -> Handler:
    async def handler(request: Request) -> Response:
        pk = request.path_params["id"]

        def act(who: Principal, form: Any) -> str:
            kind = str(form.get("kind") or "")
            done = admin.resolve_review(gw, str(pk), create_kind=kind, scope=scope_of(who))
            return f"message {pk}: a new {kind} made from it: {done.state}"

        return await _decide(gw, request, "/console/review", act)

    return handler


def quarantine_page(gw: Any) -> Handler:
    async def quarantine(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        offset = offset_of(request)
        items, total = await run_in_threadpool(visible_items, gw, who, "quarantined", offset)
        reasons = await run_in_threadpool(admin.reasons, gw, "quarantined", scope_of(who))
        return render.page(
            request,
            "console/quarantine.html",
            items=items,
            reasons=reasons,
            said=said_in(request),
            paging=paging_of(offset, total),
        )

    return quarantine


def _outcome(results: list[tuple[int, str]]) -> str:
    return "; ".join(f"message {pk}: {state}" for pk, state in results) or "nothing to retry"


def retry_one(gw: Any) -> Handler:
    async def handler(request: Request) -> Response:
        pk = request.path_params["id"]
        return await _decide(
            gw,
            request,
            "/console/quarantine",
            lambda who, _form: _outcome(admin.retry_quarantined(gw, str(pk), scope=scope_of(who))),
        )

    return handler


def retry_reason(gw: Any) -> Handler:
    """Retry every quarantined message of one reason that the viewer may see."""

    async def handler(request: Request) -> Response:
        def act(who: Principal, form: Any) -> str:
            reason = str(form.get("reason") or "")
            if not reason:
                raise Permanent("say which reason's messages to retry")
            return _outcome(admin.retry_quarantined(gw, None, reason=reason, scope=scope_of(who)))

        return await _decide(gw, request, "/console/quarantine", act)

    return handler
