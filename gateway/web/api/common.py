"""What every API endpoint shares: the asker, the request's body, and the gateway's errors as
JSON a person can act on (`{"error": "..."}` with 400, 401, 403, 404, 409, 501 or 503)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import logs
from gateway.admin.scope import Visibility
from gateway.errors import Conflict, GatewayError, NotAllowed, NotFound, NotSupported, Permanent, Retryable
from gateway.web.auth import Principal
from gateway.web.auth.access import ANONYMOUS

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]


class BadRequest(Permanent):
    """The request itself is malformed (a missing field, a date that is not one)."""


class NotSignedIn(GatewayError):
    pass


def status_of(exc: GatewayError) -> int:
    for kind, status in (
        (NotSignedIn, 401),
        (NotFound, 404),
        (NotAllowed, 403),
        (Conflict, 409),
        (NotSupported, 501),
        (Retryable, 503),
        (Permanent, 400),
    ):
        if isinstance(exc, kind):
            return status
    return 500


def error(status: int, words: str) -> JSONResponse:
    return JSONResponse({"error": words}, status_code=status)


def endpoint(fn: Endpoint) -> Endpoint:
    """Turn the gateway's errors into JSON answers; anything else is the server's fault (500)."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except GatewayError as exc:
            return error(status_of(exc), logs.redact_urls(str(exc)))

    return wrapper


def principal(request: Request) -> Principal:
    p = getattr(request.state, "principal", None)
    if p is None:
        raise NotSignedIn("sign in first (POST /signin) or send an API token (Authorization: Bearer …)")
    return p


def scope(request: Request) -> Visibility | None:
    return principal(request).visibility()


def require_admin(request: Request) -> Principal:
    p = principal(request)
    if not p.is_admin:
        raise NotAllowed("only an admin may do this")
    return p


async def body(request: Request) -> dict[str, Any]:
    """The JSON object sent (a form of a signed-in browser also does); `{}` when empty.
    Nobody signed in (loopback, no users) sends JSON only: a page of another site cannot."""
    kind = request.headers.get("content-type", "")
    if principal(request).name == ANONYMOUS and not kind.startswith("application/json"):
        raise NotAllowed("send the body as JSON, with Content-Type: application/json (an empty one may be {})")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("the body must be a JSON object")
    return doc


def field(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"give `{name}` (text) in the body")
    return value.strip()


def int_param(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"`{name}` must be a whole number (got {text!r})") from None


PAGE_DEFAULT, PAGE_MAX = 50, 500


def page_params(request: Request) -> tuple[int, int]:
    """`limit` (1 to 500, default 50) and `offset` of a listing's query."""
    q = request.query_params
    limit = int_param(q.get("limit"), "limit", PAGE_DEFAULT)
    offset = int_param(q.get("offset"), "offset", 0)
    if limit < 1 or offset < 0:
        raise BadRequest("`limit` is at least 1 and `offset` at least 0")
    return min(limit, PAGE_MAX), offset


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the gateway's blocking work (ledger, CRM, mailboxes) in a worker thread."""
    return await run_in_threadpool(fn, *args, **kwargs)
