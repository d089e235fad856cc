"""What the console's lists share: a page of 50 from `?offset=`, the "earlier"/"later" links
(templates/console/paging.html), and the banner a decision leaves (303 back to the list with
`done` or `failed` in the query)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

PER_PAGE = 50


def offset_of(request: Request) -> int:
    text = request.query_params.get("offset", "")
    return int(text) if text.isdigit() else 0


def paging_of(offset: int, total: int) -> dict[str, Any]:
    """What the list's "earlier"/"later" links need."""
    return {
        "offset": offset,
        "total": total,
        "first": offset + 1,
        "last": min(offset + PER_PAGE, total),
        "earlier": max(0, offset - PER_PAGE) if offset > 0 else None,
        "later": offset + PER_PAGE if offset + PER_PAGE < total else None,
    }


def back_to(path: str, **said: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode(said)}", status_code=303)


def said_in(request: Request) -> dict[str, str]:
    """What the previous decision did, for the banner at the top of the list."""
    return {k: request.query_params[k] for k in ("done", "failed") if request.query_params.get(k)}
