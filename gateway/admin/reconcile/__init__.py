"""`reconcile`: proof that nothing was lost between the mailboxes, the ledger and the CRM.

Per watched folder of each source that can list its folders (`gateway.mailboxes.base.Lister`:
IMAP, Maildir, EWS and Graph; not the SMTP intake), what the folder holds now is compared with what the ledger recorded there
and with the CRM's emails (compare.py); the findings are typed values (report.py) that the
CLI prints, and the HTTP API and console can show. With `fix`, what is missing goes through
the one flow again (fix.py), then everything is looked at once more: the report says what
is left, so a clean report after `--fix` is checked, not assumed.

The last run's counts are kept in the ledger's status rows (`STATUS_KEY`), from which the
status page's /metrics serves `crm_gateway_reconcile_findings{kind}` and its age.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from gateway.admin.reconcile import compare
from gateway.admin.reconcile.fix import Recorder, Reopener
from gateway.admin.reconcile.fix import fix as repair
from gateway.admin.reconcile.report import TITLES, Finding, FindingKind, FolderReport, ReconcileReport
from gateway.crm.base import Connector
from gateway.errors import Permanent
from gateway.ledger import Ledger, inventory
from gateway.mailboxes.base import FolderListing, Lister, Source, Writeback

__all__ = ["STATUS_KEY", "TITLES", "Finding", "FindingKind", "FolderReport", "ReconcileReport", "last_result", "reconcile"]

STATUS_KEY = "reconcile"  # the ledger status row of the last run
# One `fix` at a time over a ledger: a second (a double click on the console, the CLI beside
# the service, another gateway on the same PostgreSQL ledger) waits, then finds what the first
# fixed and does nothing twice.
FIX_LOCK = "reconcile-fix"
NOT_SUPPORTED = "not supported by this source yet (it cannot list its folders)"
Progress = Callable[[str, int, int], None]  # (folder, done, total)


class Gateway(Protocol):
    """What reconcile uses of the gateway (gateway.runtime.gateway.Gateway); a protocol, not an
    import, as in gateway.admin.operations."""

    @property
    def ledger(self) -> Ledger: ...
    @property
    def crm(self) -> Connector: ...
    @property
    def pipeline(self) -> Reopener: ...
    @property
    def intake(self) -> Recorder: ...
    @property
    def sources(self) -> Sequence[Source]: ...
    @property
    def writebacks(self) -> Mapping[str, Writeback]: ...
    def handle_many(self, pks: list[int]) -> dict[int, str]: ...


def reconcile(
    gw: Gateway,
    source: str | None = None,
    folder: str | None = None,
    since: datetime | None = None,
    fix: bool = False,
    progress: Progress | None = None,
    waiting: Callable[[], None] | None = None,
) -> ReconcileReport:
    """Compare (and with `fix`, repair, then compare again) the watched folders: of `source`
    only, `folder` only, copies that arrived `since` then only. Raises Permanent for a
    source name that is not configured. `waiting()`: told once when another fix runs (this
    one waits for it)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    sources = [s for s in gw.sources if source is None or s.name == source]
    if source is not None and not sources:
        raise Permanent(f"no source named {source!r} (sources: {', '.join(s.name for s in gw.sources) or '-'})")
    with gw.pipeline.task_lock(FIX_LOCK).held(waiting) if fix else nullcontext():
        return _run(gw, sources, folder, since, fix, progress)


def _run(
    gw: Gateway, sources: Sequence[Source], folder: str | None, since: datetime | None, fix: bool, progress: Progress | None
) -> ReconcileReport:
    folders = _look(gw, sources, folder, since, progress)
    if fix:
        fixed = repair(gw, gw.pipeline, [f for r in folders for f in r.findings])
        missing = _still_missing(gw, fixed)
        fixed = [f for f in fixed if not any(m.message_pk == f.message_pk and m.kind == f.kind for m in missing)]
        again = _look(gw, sources, folder, since, progress)
        folders = [
            replace(r, fixed=tuple(f for f in fixed if _in(f, r)), findings=r.findings + tuple(m for m in missing if _in(m, r)))
            for r in again
        ]
    report = ReconcileReport(datetime.now(UTC), tuple(folders), fix)
    gw.ledger.set_status(STATUS_KEY, {"at": report.at.isoformat(), "counts": report.to_json()["counts"], "fix": fix})
    return report


def last_result(ledger: Ledger) -> tuple[dict[str, int], datetime] | None:
    """The last run's counts per kind and when it ran; None before the first run."""
    doc = ledger.all_status().get(STATUS_KEY)
    if not doc:
        return None
    return {str(k): int(v) for k, v in (doc.get("counts") or {}).items()}, datetime.fromisoformat(doc["at"])


def _in(f: Finding, r: FolderReport) -> bool:
    return (f.ref.source, f.ref.account, f.ref.folder) == (r.source, r.account, r.folder)


def _look(
    gw: Gateway, sources: Sequence[Source], folder: str | None, since: datetime | None, progress: Progress | None
) -> list[FolderReport]:
    out = []
    for src in sources:
        if not isinstance(src, Lister):
            out.append(FolderReport(src.name, "", "*", supported=False, note=NOT_SUPPORTED))
            continue
        for listing in src.listings(folder, since, progress):
            out.append(_folder(gw, src, listing, since))
    return out


def _folder(gw: Gateway, lister: Lister, listing: FolderListing, since: datetime | None) -> FolderReport:
    where = listing.where
    every = inventory.folder_copies(gw.ledger.reader, where.source, where.account, where.folder)
    # the listing is matched against every copy (IMAP's SINCE counts whole days); what the
    # ledger alone says is looked at for the copies it saw since then
    findings = compare.mailbox_findings(listing, every, lister.marks_for)
    known = [k for k in every if since is None or k.location.seen_at >= since]
    findings += compare.not_done(known, since)
    primaries = [k.location.message_pk for k in known if k.primary and k.location.message_pk is not None]
    attached = inventory.attached(gw.ledger.reader, primaries)
    ids = inventory.identities(gw.ledger.reader, [k.message_id for k in known if k.location.message_pk in attached])
    crm, note = compare.crm_findings(known, attached, ids, gw.crm, since)
    # a mail can be stored again only while the folder still holds it (its spool file went
    # when it was done): the others are reported, never reopened into a quarantine
    held = {(h.ref.uidvalidity, h.ref.item_key) for h in listing.items}
    crm = [f if f.kind != FindingKind.MISSING_IN_CRM or (f.ref.uidvalidity, f.ref.item_key) in held else _gone(f) for f in crm]
    order = list(FindingKind)
    findings = sorted(findings + crm, key=lambda f: (order.index(f.kind), f.ref.uidvalidity, _num(f.ref.item_key)))
    note = "; ".join(n for n in (listing.note, note) if n)
    return FolderReport(where.source, where.account, where.folder, True, note, len(listing.items), tuple(findings))


def _gone(f: Finding) -> Finding:
    return replace(f, fixable=False, detail=f"{f.detail}; the folder no longer holds it, so it cannot be stored again")


def _still_missing(gw: Gateway, fixed: Sequence[Finding]) -> list[Finding]:
    """Fixed mails missing in the CRM that are there now are fixed; the others (the rules sent
    them to review, or they failed) stay findings, with the state they reached."""
    out = []
    for f in fixed:
        if f.kind != FindingKind.MISSING_IN_CRM or f.message_pk is None:
            continue
        row = gw.ledger.message(f.message_pk)
        if gw.crm.find_email(row.message_id, row.content_hash) is None:
            out.append(replace(f, fixable=False, detail=f"sent through the rules again, no email in the CRM: now {row.state}"))
    return out


def _num(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)
