"""`GET /api/v1/status`, `/messages`, `/messages/{id}`, `/messages/lookup`: what the ledger
knows, as much as the asker may see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.admin import messages as admin_messages
from gateway.admin.pimsync import visible_book_docs
from gateway.admin.scope import Visibility
from gateway.admin.status import status_doc
from gateway.ledger import MessageState
from gateway.ledger.search import MessageFilter
from gateway.web.api.common import BadRequest, endpoint, int_param, off_loop, principal, scope
from gateway.web.auth import csrf_token


def visible_status(doc: dict[str, Any], seen: Visibility | None) -> dict[str, Any]:
    """The status document with only the sources a person owns and the address books of their
    CRM users (an admin: all of them)."""
    if seen is None:
        return doc
    return {
        **doc,
        "sources": [s for s in doc["sources"] if s["name"] in seen.sources],
        "pimsync": visible_book_docs(doc.get("pimsync") or [], seen),
    }


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"`{name}` must be an ISO date or time, like 2026-01-31 or 2026-01-31T08:00:00Z (got {text!r})"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _states(text: str | None) -> tuple[MessageState, ...]:
    out = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                out.append(MessageState(part.strip()))
            except ValueError:
                known = ", ".join(s.value for s in MessageState)
                raise BadRequest(f"unknown state {part.strip()!r} (known: {known})") from None
    return tuple(out)


def routes_for(gw: Any) -> list[tuple[str, str, Any]]:
    @endpoint
    async def status(request: Request) -> Response:
        seen = scope(request)
        doc = await off_loop(status_doc, gw.config, gw.ledger)
        return JSONResponse(visible_status(doc, seen))

    @endpoint
    async def listing(request: Request) -> Response:
        q = request.query_params
        f = MessageFilter(
            states=_states(q.get("state")),
            source=q.get("source") or None,
            folder=q.get("folder") or None,
            sender=q.get("sender") or None,
            since=_when(q.get("since"), "since"),
            until=_when(q.get("until"), "until"),
            text=q.get("q") or None,
        )
        limit, offset = int_param(q.get("limit"), "limit", 50), int_param(q.get("offset"), "offset", 0)
        return JSONResponse(await off_loop(admin_messages.list_messages, gw, f, limit, offset, scope(request)))

    @endpoint
    async def one(request: Request) -> Response:
        pk = int_param(request.path_params["id"], "id", 0)
        return JSONResponse(await off_loop(admin_messages.message_doc, gw, pk, scope(request)))

    @endpoint
    async def lookup(request: Request) -> Response:
        message_id = request.query_params.get("message_id", "").strip()
        if not message_id:
            raise BadRequest("give ?message_id=<the Message-ID>")
        mailbox = request.query_params.get("mailbox", "").strip() or None
        return JSONResponse(await off_loop(admin_messages.lookup, gw, message_id, scope(request), mailbox))

    @endpoint
    async def me(request: Request) -> Response:
        p = principal(request)
        return JSONResponse(
            {
                "name": p.name,
                "role": str(p.role),
                "mailboxes": sorted(p.mailboxes),
                "crm_users": sorted(p.crm_users),
                "via_token": p.via_token,
                "csrf_token": csrf_token(request),
            }
        )

    return [
        ("GET", "/me", me),
        ("GET", "/status", status),
        ("GET", "/messages", listing),
        ("GET", "/messages/lookup", lookup),
        ("GET", "/messages/{id:int}", one),
    ]
