"""The HTML console: what a person reads and decides in a browser (overview, review queue,
quarantine, one message, reconcile, sync conflicts). Its pages call the same gateway.admin functions as the command
line; the sign-in, roles and CSRF token come from the request (`request.state.principal`,
set by the web app's sign-in middleware). Templates live in gateway/web/templates/console/,
styles and the little JavaScript there is in gateway/web/static/."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Mount, Route

from gateway.web.console import conflicts, message, overview, queues, reconcile


def routes(gw: Any) -> list[BaseRoute]:
    """The console's routes, mounted under /console by the web app."""
    return [
        Mount(
            "/console",
            routes=[
                Route("/", overview.page(gw)),
                Route("/review", queues.review_page(gw)),
                Route("/review/{id:int}/resolve", queues.resolve(gw), methods=["POST"]),
                Route("/review/{id:int}/create", queues.create(gw), methods=["POST"]),
                Route("/quarantine", queues.quarantine_page(gw)),
                Route("/quarantine/{id:int}/retry", queues.retry_one(gw), methods=["POST"]),
                Route("/quarantine/retry", queues.retry_reason(gw), methods=["POST"]),
                Route("/messages/{id:int}", message.page(gw)),
                Route("/reconcile", reconcile.page(gw), methods=["GET", "POST"]),
                Route("/conflicts", conflicts.page(gw)),
                Route("/conflicts/{id:int}/resolve", conflicts.resolve(gw), methods=["POST"]),
            ],
        )
    ]
