"""One message: its headers, its sanitised HTML body in a sandboxed frame, its attachments,
the rules' trace, and where it is in the CRM. The document `GET /api/v1/messages/{id}` gives
(`message_doc`: `explain`'s, with the CRM records the mail is on), plus the body read back
from the gateway's spool while it still keeps the mail (until it is done)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import messages as admin_messages
from gateway.admin.scope import Visibility
from gateway.errors import GatewayError, NotAllowed, NotFound
from gateway.message.model import Message
from gateway.message.parsing import parse
from gateway.web.console import render
from gateway.web.console.viewer import scope_of, sign_in_first, viewer_of


@dataclass(frozen=True)
class InCrm:
    """One CRM write of the message, read from its journal: an email or a note on records."""

    what: str  # "email 12" / "note 3"
    on: tuple[str, ...]  # "contact:1", …


def in_crm(journal: dict[str, Any]) -> list[InCrm]:
    out = []
    for result in journal.values():
        if not isinstance(result, dict):
            continue
        targets = tuple(f"{t.get('kind')}:{t.get('id')}" for t in result.get("targets") or [] if isinstance(t, dict))
        if "email_id" in result:
            out.append(InCrm(f"email {result['email_id']}", targets))
        elif "note_ids" in result:
            out.append(InCrm("note " + ", ".join(map(str, result.get("note_ids") or [])), targets))
    return out


def kept_mail(gw: Any, pk: int) -> Message | None:
    """The mail as the gateway still keeps it in its spool (None once it is done and discarded)."""
    row = gw.ledger.message(pk)
    paths = [row.spool_path] + [loc.spool_path for loc in gw.ledger.locations_of(pk)]
    for path in paths:
        if path and Path(path).is_file():
            return parse(Path(path).read_bytes(), max_size=gw.config.max_message_size)
    return None


def _load(gw: Any, pk: int, scope: Visibility | None) -> tuple[dict[str, Any], Message | None]:
    doc = admin_messages.message_doc(gw, pk, scope)
    try:
        mail = kept_mail(gw, pk)
    except GatewayError:  # unparseable: the page still shows what the ledger knows
        mail = None
    return doc, mail


def page(gw: Any) -> Callable[[Request], Awaitable[Response]]:
    async def message(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        pk = int(request.path_params["id"])
        try:
            doc, mail = await run_in_threadpool(_load, gw, pk, scope_of(who))
        except NotFound as exc:
            return render.error(request, 404, "No such message", f"{exc}.")
        except NotAllowed as exc:
            return render.error(request, 403, "Not one of your messages", f"{exc}.")
        return render.page(request, "console/message.html", doc=doc, mail=mail, in_crm=in_crm(doc["journal"]))

    return message
