"""The overview: each mailbox, whether it is watched, push or poll, its last sync and last
error in words, its counts (per mailbox where a source reaches several), and a warning when the status is stale because the
gateway stopped. It reads `status_doc`, the document `status` prints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import operations as admin
from gateway.admin.pimsync import visible_book_docs
from gateway.web.console import render
from gateway.web.console.viewer import Principal, scope_of, sign_in_first, viewer_of

# What a mode in the status means to a reader.
_MODES = {
    "idle": "push (IMAP IDLE)",
    "push": "push",
    "streaming": "push (streaming)",
    "poll": "poll",
    "watch": "push (file watch)",
}


@dataclass(frozen=True)
class MailboxRow:
    source: str
    mailbox: str
    watched: str  # in words: "watched", "not watched", "reconnecting", …
    mode: str
    last_sync: str | None
    last_error: str
    counts: dict[str, int]
    status_age: str


def _mode(raw: object) -> str:
    text = str(raw or "")
    return _MODES.get(text, text or "unknown")


def mailbox_rows(
    doc: dict[str, Any], who: Principal, by_mailbox: dict[tuple[str, str], dict[str, int]] | None = None
) -> list[MailboxRow]:
    """`by_mailbox`: the ledger's counts per (source, account); a source of several mailboxes
    shows each its own (else each row would carry the whole source's, everyone's mail)."""
    rows: list[MailboxRow] = []
    running = bool(doc.get("running"))
    per_mailbox: dict[tuple[str, str], dict[str, int]] = {}
    for (source, account), states in (by_mailbox or {}).items():
        mine = per_mailbox.setdefault((source, account.strip().lower()), {})
        for state, n in states.items():
            mine[state] = mine.get(state, 0) + n
    for src in doc["sources"]:
        counts: dict[str, int] = {}
        for f in src["folders"]:
            for state, n in f["counts"].items():
                counts[state] = counts.get(state, 0) + n
        folder_error = next((f.get("last_error") for f in src["folders"] if f.get("last_error")), "")
        common = {
            "source": src["name"],
            "mode": _mode(src.get("mode") or next((f.get("mode") for f in src["folders"] if f.get("mode")), "")),
            "last_sync": src.get("last_sync"),
            "counts": counts,
            "status_age": admin.ago(src.get("status_age_seconds")),
        }
        # IMAP reaching many: `mailboxes` {user: its watch}; EWS and Graph: `mailbox_health`
        listed = src.get("mailboxes") if isinstance(src.get("mailboxes"), dict) else {}
        health = src.get("mailbox_health") if isinstance(src.get("mailbox_health"), dict) else {}
        each = [(u, str(b.get("watch") or "unknown"), b.get("last_error") or "") for u, b in listed.items()]
        each += [(a, str(h.get("state") or "unknown"), h.get("last_error") or "") for a, h in health.items()]
        if not each:
            accounts = [m["account"] for m in src.get("leases") or []] or [str(src.get("mailbox") or src["name"])]
            state = (
                "watched" if src["connected"] else ("not watched: the gateway is not running" if not running else "not watched")
            )
            each = [(a, state, src.get("last_error") or folder_error) for a in accounts]
        several = len({a for a, _, _ in each}) > 1 or bool(listed or health)
        for account, state, error in each:
            if not who.sees(src["name"], account):
                continue
            watched = state if running or state.startswith("not watched") else f"not watched (last known: {state})"
            own = dict(common)
            if several and by_mailbox is not None:
                own["counts"] = per_mailbox.get((src["name"], account.strip().lower()), {})
            rows.append(MailboxRow(mailbox=account, watched=watched, last_error=error or "", **own))
    return rows


def page(gw: Any) -> Callable[[Request], Awaitable[Response]]:
    async def overview(request: Request) -> Response:
        who = viewer_of(request)
        if who is None:
            return sign_in_first(request)
        doc = await run_in_threadpool(admin.status_doc, gw.config, gw.ledger)
        rows = mailbox_rows(doc, who, await run_in_threadpool(gw.ledger.counts_by_mailbox))
        _, review = await run_in_threadpool(admin.queue_page, gw, "review", scope_of(who), 0)
        _, quarantined = await run_in_threadpool(admin.queue_page, gw, "quarantined", scope_of(who), 0)
        return render.page(
            request,
            "console/overview.html",
            doc=doc,
            rows=rows,
            liveness=admin.liveness_line(doc),
            rule_errors=doc["rules"].get("errors") or [],
            rules=len(doc["rules"].get("rules") or []),
            review=review,
            quarantined=quarantined,
            books=visible_book_docs(doc.get("pimsync") or [], scope_of(who)),
        )

    return overview
