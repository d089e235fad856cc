"""The reconcile page (admins): the last run's counts and age, and a form that runs
`reconcile` — with "fix" ticked, `reconcile --fix` — and shows its report per folder. It calls
the function the command line calls (gateway/admin/reconcile)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.reconcile import TITLES, FindingKind, ReconcileReport, last_result, reconcile
from gateway.errors import GatewayError
from gateway.web.console import render
from gateway.web.console.viewer import sign_in_first, viewer_of

Handler = Callable[[Request], Awaitable[Response]]
KINDS = [(k.value, TITLES[k]) for k in FindingKind]


def _page(gw: Any, request: Request, report: ReconcileReport | None = None, failed: str = "", **asked: str) -> Response:
    last = last_result(gw.ledger)
    return render.page(
        request,
        "console/reconcile.html",
        sources=[s.name for s in gw.sources],
        last=({"counts": last[0], "at": last[1]} if last else None),
        report=report.to_json() if report is not None else None,
        kinds=KINDS,
        said={"failed": failed} if failed else None,
        asked=asked,
    )


def page(gw: Any) -> Handler:
    async def show(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        if not who.is_admin:
            return render.error(request, 403, "Only an admin reconciles", "Ask an admin to run reconcile for your mailbox.")
        if request.method == "GET":
            return await run_in_threadpool(_page, gw, request)
        form = await request.form()
        asked = {k: str(form.get(k) or "").strip() for k in ("source", "folder", "since")}
        try:
            since = datetime.fromisoformat(asked["since"]) if asked["since"] else None
        except ValueError:
            failed = f"“{asked['since']}” is not a date (write it as 2026-12-01, or 2026-12-01T08:00)"
            return await run_in_threadpool(_page, gw, request, None, failed, **asked)
        fix = form.get("fix") == "1"

        def run() -> Response:
            try:
                report = reconcile(gw, asked["source"] or None, asked["folder"] or None, since, fix)
            except GatewayError as exc:  # an unknown source, a mailbox that could not be reached
                return _page(gw, request, None, str(exc), **asked)
            return _page(gw, request, report, **asked)

        return await run_in_threadpool(run)

    return show
