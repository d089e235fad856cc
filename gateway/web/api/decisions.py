"""What a person decides through the API: review items resolved to a record or a new one,
quarantined messages retried, a handled message filed on one more record. Each calls the
function the CLI's command calls (gateway/admin), with the asker's visibility."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.admin import operations as admin
from gateway.admin import records
from gateway.web.api.common import BadRequest, body, endpoint, field, off_loop, page_params, scope


def review_item(item: dict[str, Any]) -> dict[str, Any]:
    """A review listing's item with each candidate record once, with its name and the address
    it was found by (`matched`)."""
    candidates: list[dict[str, Any]] = []
    for address, refs in item.get("candidates") or []:
        for r in refs:
            label = f"{r['kind']}:{r['id']}"
            known = next((c for c in candidates if c["record"] == label), None)
            if known is None:
                candidates.append(
                    {"record": label, "kind": r["kind"], "id": str(r["id"]), "name": r.get("name") or "", "matched": [address]}
                )
            elif address not in known["matched"]:
                known["matched"].append(address)
    return {**item, "sender": item.get("from"), "candidates": candidates}


def routes_for(gw: Any) -> list[tuple[str, str, Any]]:
    @endpoint
    async def review(request: Request) -> Response:
        limit, offset = page_params(request)
        items, total = await off_loop(admin.queue_page, gw, "review", scope(request), limit, offset)
        return JSONResponse({"review": [review_item(i) for i in items], "total": total, "limit": limit, "offset": offset})

    @endpoint
    async def resolve(request: Request) -> Response:
        doc = await body(request)
        record, ident = field(doc, "record"), str(request.path_params["id"])
        # A person picks a candidate or any record they may see: the API's pick is deliberate,
        # as `--force` is on the command line (the record's visibility is still checked).
        done = await off_loop(admin.resolve_review, gw, ident, to=[record], force=True, scope=scope(request))
        return JSONResponse({"id": int(ident), "state": done.state, "record": record, "outside_candidates": list(done.outside)})

    @endpoint
    async def create(request: Request) -> Response:
        doc = await body(request)
        kind, ident = field(doc, "kind"), str(request.path_params["id"])
        done = await off_loop(admin.resolve_review, gw, ident, create_kind=kind, scope=scope(request))
        return JSONResponse({"id": int(ident), "state": done.state, "kind": kind})

    @endpoint
    async def quarantine(request: Request) -> Response:
        limit, offset = page_params(request)
        items, total = await off_loop(admin.queue_page, gw, "quarantined", scope(request), limit, offset)
        return JSONResponse({"quarantined": items, "total": total, "limit": limit, "offset": offset})

    @endpoint
    async def retry_one(request: Request) -> Response:
        await body(request)  # no fields; read so a cross-site form without JSON is refused
        ident = str(request.path_params["id"])
        results = await off_loop(admin.retry_quarantined, gw, ident, scope=scope(request))
        return JSONResponse({"retried": [{"id": pk, "state": state} for pk, state in results]})

    @endpoint
    async def retry_reason(request: Request) -> Response:
        reason = field(await body(request), "reason")
        results = await off_loop(admin.retry_quarantined, gw, None, reason=reason, scope=scope(request))
        return JSONResponse({"retried": [{"id": pk, "state": state} for pk, state in results]})

    @endpoint
    async def link(request: Request) -> Response:
        doc = await body(request)
        record = field(doc, "record")
        message, message_id, mailbox = doc.get("message"), doc.get("message_id"), doc.get("mailbox")
        if mailbox is not None and not isinstance(mailbox, str):
            raise BadRequest("`mailbox` is the address of the mailbox to look in first (a string)")
        if message is not None and not (isinstance(message, int) or (isinstance(message, str) and message.isdigit())):
            raise BadRequest("`message` is the ledger id of the message (a number)")
        if message is None and not (isinstance(message_id, str) and message_id.strip()):
            raise BadRequest("give `message` (the ledger id) or `message_id` (the Message-ID)")
        done = await off_loop(
            records.link,
            gw,
            record,
            message=int(message) if message is not None else None,
            message_id=message_id if message is None else None,
            scope=scope(request),
            mailbox=mailbox or None,
        )
        return JSONResponse(done)

    @endpoint
    async def search(request: Request) -> Response:
        q = request.query_params
        hits = await off_loop(records.search, gw, q.get("q", ""), q.get("kind") or None, scope(request))
        return JSONResponse({"records": hits})

    return [
        ("GET", "/review", review),
        ("POST", "/review/{id:int}/resolve", resolve),
        ("POST", "/review/{id:int}/create", create),
        ("GET", "/quarantine", quarantine),
        ("POST", "/quarantine/retry", retry_reason),
        ("POST", "/quarantine/{id:int}/retry", retry_one),
        ("GET", "/crm/search", search),
        ("POST", "/link", link),
    ]
