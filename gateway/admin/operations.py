"""What the admin commands do (status, explain, review, quarantine, reprocess, forget).

The CLI only parses arguments and prints; these functions hold the behaviour, so the
status page can call the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from gateway.admin.explain_text import render_explain  # noqa: F401  (explain in words: its own module)
from gateway.admin.liveness import ago  # noqa: F401  (the status page's "N s ago")
from gateway.admin.scope import RecordSight, Visibility, require_record_visible, require_sees, visible_copies
from gateway.admin.status import STATES, liveness_line, mailbox_lines, render_status, status_doc  # noqa: F401  (status: its own module)
from gateway.crm.base import PARTY_KINDS, PartyRef
from gateway.engine.model import Plan, jsonable
from gateway.errors import Conflict, NotFound, Permanent
from gateway.ledger import Ledger, MessageRow, MessageState
from gateway.ledger.search import MessageFilter, count_by_reason, search_messages
from gateway.message import addresses
from gateway.pipeline.journal import plan_of

if TYPE_CHECKING:
    from gateway.crm.base import Connector
    from gateway.ledger.spool import Spool
    from gateway.pipeline.facade import Pipeline


class Gateway(Protocol):
    """What these functions use of the running gateway (gateway.runtime.gateway.Gateway).

    A protocol, not an import: the runtime serves the status page, which calls these
    functions, so admin importing the runtime, even for a type, would close a circle."""

    @property
    def ledger(self) -> Ledger: ...
    @property
    def crm(self) -> Connector: ...
    @property
    def spool(self) -> Spool: ...
    @property
    def pipeline(self) -> Pipeline: ...
    def handle(self, pk: int) -> str: ...


# ---- explain -----------------------------------------------------------------------------

# What `explain` and the listings show of a message without a stored Plan (not evaluated yet,
# reopened, forgotten): nothing found, planned or traced, and no direction.
_NO_PLAN = Plan(outcome="ignored", direction="inbound")


def _messages_for(ledger: Ledger, ident: str) -> list[MessageRow]:
    if ident.isdigit():
        try:
            return [ledger.message(int(ident))]
        except KeyError:
            raise NotFound(f"no message with id {ident}") from None
    rows = ledger.find_messages(ident)
    if not rows:
        raise NotFound(f"no message with Message-ID {ident}")
    return rows


def explain_doc(gw: Gateway, ident: str, scope: Visibility | None = None) -> list[dict[str, Any]]:
    """What the gateway knows of a message; with `scope`, only its copies in the person's mailboxes."""
    docs = []
    for row in _messages_for(gw.ledger, ident):
        stored = plan_of(row)
        plan = stored or _NO_PLAN
        hidden = [
            c.ref.label()
            for c in gw.ledger.locations_of(row.id)
            if scope is not None and not scope.sees(c.ref.source, c.ref.account)
        ]
        docs.append(
            {
                "id": row.id,
                "message_id": row.message_id,
                "subject": row.subject,
                "from": row.from_address,
                "state": row.state,
                "reason": row.reason,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
                "rules": list(plan.touched),
                "direction": stored.direction if stored else None,
                "counterparts": list(plan.counterparts),
                "found": jsonable(plan.found),
                "found_by_domain": jsonable(plan.found_by_domain),
                "journal": gw.ledger.journal(row.id),
                "review": jsonable(plan.review),
                "planned_tags": {"add": list(plan.tags_add), "remove": list(plan.tags_remove), "move": plan.move},
                "locations": [
                    {
                        "source": loc.ref.source,
                        "account": loc.ref.account,
                        "folder": loc.ref.folder,
                        "key": loc.ref.item_key,
                        "uidvalidity": loc.ref.uidvalidity,
                        "state": loc.state,
                        "tags": list(loc.tags),
                    }
                    for loc in visible_copies(scope, gw.ledger.locations_of(row.id))
                ],
                "trace": jsonable(plan.trace),
                "history": [
                    {"at": at.isoformat(), "event": ev, "detail": d}
                    for at, ev, d in gw.ledger.events(row.id)
                    if not any(h in str(d) for h in hidden)  # what was done to another's copy
                ],
            }
        )
    return docs


# ---- listings ----------------------------------------------------------------------------


def listing(gw: Gateway, state: str, scope: Visibility | None = None) -> list[dict[str, Any]]:
    """The messages in `state` (review, quarantined), those `scope` sees when given."""
    return queue_page(gw, state, scope)[0]


def queue_page(
    gw: Gateway, state: str, scope: Visibility | None = None, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of `listing`, oldest first (a queue), and how many there are in all: one query
    for the page and one for its copies, however long the queue is."""
    rows, total = search_messages(gw.ledger.reader, _in_state(state, scope), limit, max(0, offset), oldest_first=True)
    copies = gw.ledger.copies_of([r.id for r in rows])
    sight = RecordSight(gw.crm, scope)  # a person's candidates: only records they may see
    items = []
    for row in rows:
        plan = plan_of(row) or _NO_PLAN
        loc = visible_copies(scope, copies[row.id])  # the first copy the person may see
        item = {
            "id": row.id,
            "message_id": row.message_id,
            "subject": row.subject,
            "from": row.from_address,
            "reason": row.reason,
            "since": row.updated_at.isoformat(),
            "attempts": row.attempts,
            "folder": loc[0].ref.folder if loc else None,
            "source": loc[0].ref.source if loc else None,
            "account": loc[0].ref.account if loc else None,
        }
        if state == "review":
            item["candidates"] = sight.candidates(jsonable(plan.review.candidates)) if plan.review else []
            item["counterparts"] = list(plan.counterparts)
        items.append(item)
    return items, total


def reasons(gw: Gateway, state: str, scope: Visibility | None = None) -> dict[str, int]:
    """How many messages in `state` per reason, most first (the quarantine's groups)."""
    return count_by_reason(gw.ledger.reader, _in_state(state, scope))


def _in_state(state: str, scope: Visibility | None) -> MessageFilter:
    return MessageFilter(
        states=(MessageState(state),),
        sources_any=scope.sources if scope is not None else None,
        accounts_any=scope.accounts if scope is not None else None,
    )


def render_listing(rows: list[dict[str, Any]], state: str) -> Any:
    from rich.table import Table

    t = Table(title=f"{len(rows)} {state}")
    for col in ("id", "from", "subject", "folder", "reason" if state != "review" else "candidates", "since"):
        t.add_column(col)
    for r in rows:
        extra = (
            r["reason"]
            if state != "review"
            else "; ".join(f"{a}: " + ", ".join(_ref_text(x) for x in refs) for a, refs in r.get("candidates", [])) or r["reason"]
        )
        t.add_row(
            str(r["id"]),
            r["from"],
            r["subject"][:50],
            str(r["folder"]),
            extra if state == "review" else extra[:80],
            r["since"][:19],
        )
    return t


# ---- actions -----------------------------------------------------------------------------


def _one(gw: Gateway, ident: str, state: str, scope: Visibility | None = None) -> MessageRow:
    found = _messages_for(gw.ledger, ident)
    if scope is not None:
        found = [r for r in found if scope.sees_any(gw.ledger.locations_of(r.id))]
        if not found:
            require_sees(scope, [], f"message {ident}")
    rows = [r for r in found if r.state == state]
    if not rows:
        raise Conflict(f"message {ident} is not {state}")
    return rows[0]


def retry_quarantined(
    gw: Gateway, ident: str | None, *, reason: str | None = None, scope: Visibility | None = None
) -> list[tuple[int, str]]:
    """Send one quarantined message (`ident`), or all (with `reason`: those quarantined for
    exactly that reason) through the current rules again; those `scope` sees when given."""
    if ident:
        rows = [_one(gw, ident, "quarantined", scope)]
    else:
        rows = [r for r in gw.ledger.messages_in(["quarantined"]) if reason is None or r.reason == reason]
        if scope is not None:
            rows = [r for r in rows if scope.sees_any(gw.ledger.locations_of(r.id))]
    results = []
    for row in rows:
        pk = gw.pipeline.reopen(row.id)
        results.append((row.id, gw.handle(pk)))
    return results


def reprocess_state(gw: Gateway, state: str, since: datetime | None) -> list[tuple[int, str]]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    results = []
    for row in gw.ledger.messages_in([state], since):
        pk = gw.pipeline.reopen(row.id)
        results.append((row.id, gw.handle(pk)))
    return results


def parse_target(text: str) -> PartyRef:
    kind, sep, rid = text.partition(":")
    if not sep or kind not in PARTY_KINDS or not rid:
        raise Permanent(f"--to wants KIND:ID with KIND one of {', '.join(PARTY_KINDS)} (got {text!r})")
    return PartyRef(kind=kind, id=rid)


def _ref_text(r: dict[str, Any]) -> str:
    name = r.get("name") or ""
    return f"{r['kind']}:{r['id']}" + (f" {name!r}" if name else "")


def candidates_of(row: MessageRow) -> list[PartyRef]:
    """The records the rules proposed for a message in review, once each, in their order."""
    plan = plan_of(row)
    out: list[PartyRef] = []
    for _address, refs in plan.review.candidates if plan is not None and plan.review is not None else ():
        for r in refs:
            if all((r.kind, r.id) != (x.kind, x.id) for x in out):
                out.append(r)
    return out


@dataclass(frozen=True)
class Resolved:
    state: str
    outside: tuple[str, ...]  # picked records the rules had not proposed (accepted with --force)


def resolve_review(
    gw: Gateway,
    ident: str,
    *,
    to: list[str] | None = None,
    create_kind: str | None = None,
    force: bool = False,
    scope: Visibility | None = None,
) -> Resolved:
    """Attach a message in review to picked records (or a created one). A record that is not
    among the proposed candidates is refused without `force`: a typo in an id would otherwise
    file the mail on a stranger's record without a word. With `scope`, the message must lie in
    the person's mailbox and each record be one their CRM user may see."""
    row = _one(gw, ident, "review", scope)
    if create_kind is not None and create_kind not in PARTY_KINDS:
        raise Permanent(f"--kind must be one of {', '.join(PARTY_KINDS)}")
    targets = [parse_target(t) for t in (to or [])]
    check = getattr(gw.crm, "get_party", None)
    for t in targets:
        if check is not None and check(t) is None:
            raise NotFound(f"no {t.kind} with id {t.id} in the CRM")
        if scope is not None:
            require_record_visible(gw.crm, t, scope)
    proposed = candidates_of(row)
    keys = {(c.kind, c.id) for c in proposed}
    outside = tuple(t.label() for t in targets if proposed and (t.kind, str(t.id)) not in keys)
    if outside and not force:
        raise Permanent(
            f"{', '.join(outside)} is not among the candidates of message {row.id} "
            f"({', '.join(_ref_text(c.as_dict()) for c in proposed)}); give --force to attach it there anyway"
        )
    return Resolved(gw.pipeline.resolve(row.id, targets, create_kind), outside)


def forget_address(gw: Gateway, address: str) -> dict[str, Any]:
    if "@" not in address:
        raise Permanent(f"not an address: {address!r}")
    created = gw.ledger.created_refs()
    # The journal is one witness; a CRM that marks the records the gateway made (the embedded
    # one's `created_by_gateway`) is the other, and the only one left once a journal was erased.
    marked = getattr(gw.crm, "made_by_gateway", None)
    report = gw.crm.forget(address, lambda ref: (ref.kind, str(ref.id)) in created or (marked is not None and bool(marked(ref))))
    gone = gw.ledger.forget_address(addresses.key(address))
    for row in gone:
        gw.spool.discard(row.spool_path)
        for loc in gw.ledger.locations_of(row.id):
            gw.spool.discard(loc.spool_path)
    return {
        "address": address,
        "records_deleted": [r.as_dict() for r in report.parties],
        "emails_removed": report.emails_removed,
        "emails_unlinked": report.emails_unlinked,
        "ledger_messages": len(gone),
    }
