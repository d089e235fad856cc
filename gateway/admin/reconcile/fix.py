"""`reconcile --fix`: what was found missing goes through the one flow again, and copies that
lost their tags are tagged again through the write-back. Each step is idempotent, so a
second `--fix` finds nothing to do and the CRM never gets a mail twice:

- a copy unknown to the ledger is fetched from the mailbox and recorded at its place, as
  `process FILE.eml` records a file (a copy known by then keeps its row), then handled;
- a copy not done is handled again (as a restart's recovery would queue it), a retry now;
- a done mail missing in the CRM, while its folder still holds it, is reopened with its attach
  result dropped (the rules run again, the records it made are adopted from the journal, the
  attach stores it once); one whose mail is gone is only reported, and one the rules now send
  elsewhere (review, a failure) stays a finding after the fix, with the state it reached;
- an untagged copy gets the ledger's tags set again (`+FLAGS` sets a keyword once; Exchange
  and Graph categories are written only where they lack one).

A mail in the CRM twice is only reported: which record to delete is a person's call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from gateway.admin.reconcile.report import Finding, FindingKind
from gateway.ledger.inventory import ATTACH_STEPS
from gateway.ledger.refs import SourceRef
from gateway.mailboxes.base import Applied, Refetch, TagRequest, Writeback, apply_each

HANDLE_BATCH = 100  # copies handled per batch (one CRM transaction where the connector can)


class Recorder(Protocol):
    def record(self, ref: SourceRef, raw: bytes) -> int: ...


class TaskLock(Protocol):
    def held(self, waiting: Callable[[], None] | None = None) -> AbstractContextManager[None]: ...


class Reopener(Protocol):
    def reopen(self, message_pk: int, *, redo: Sequence[str] = ()) -> int: ...

    def task_lock(self, name: str) -> TaskLock:
        """One holder at a time over the ledger (gateway.ledger.locks.NamedLock)."""
        ...


class Retrier(Protocol):
    def retry_now(self, message_pks: Sequence[int]) -> None: ...


class Fixer(Protocol):
    """What fixing uses of the gateway (gateway.runtime.gateway.Gateway)."""

    @property
    def ledger(self) -> Retrier: ...
    @property
    def intake(self) -> Recorder: ...
    @property
    def writebacks(self) -> Mapping[str, Writeback]: ...
    def handle_many(self, pks: list[int]) -> dict[int, str]: ...


def fix(gw: Fixer, reopen: Reopener, findings: Sequence[Finding]) -> list[Finding]:
    """Do what can be done for these findings; the ones acted on."""
    done: list[Finding] = []
    pks: list[int] = []
    for f in findings:
        if f.kind == FindingKind.UNKNOWN:
            wb = gw.writebacks.get(f.ref.source)
            raw = wb.fetch(f.ref) if isinstance(wb, Refetch) else None
            if raw is None:  # gone meanwhile, or a mailbox that cannot give it again
                continue
            pks.append(gw.intake.record(f.ref, raw.read_bytes() if isinstance(raw, Path) else raw))
        elif f.kind == FindingKind.NOT_DONE and f.location_pk is not None:
            pks.append(f.location_pk)
        elif f.kind == FindingKind.MISSING_IN_CRM and f.message_pk is not None and f.fixable:
            pks.append(reopen.reopen(f.message_pk, redo=ATTACH_STEPS))
        else:
            continue
        done.append(f)
    # a retry whose time has not come is not handled: it is made due now
    gw.ledger.retry_now([f.message_pk for f in done if f.kind == FindingKind.NOT_DONE and f.message_pk is not None])
    unique = list(dict.fromkeys(pks))
    for i in range(0, len(unique), HANDLE_BATCH):
        gw.handle_many(unique[i : i + HANDLE_BATCH])
    return done + retag(gw.writebacks, [f for f in findings if f.kind == FindingKind.UNTAGGED])


def retag(writebacks: Mapping[str, Writeback], findings: Sequence[Finding]) -> list[Finding]:
    """Set the ledger's tags on the copies again, in one write-back call per source."""
    by_source: dict[str, list[Finding]] = {}
    for f in findings:
        by_source.setdefault(f.ref.source, []).append(f)
    done: list[Finding] = []
    for source, found in by_source.items():
        wb = writebacks.get(source)
        if wb is None:
            continue
        requests = [TagRequest(f.ref, frozenset(f.tags), frozenset(f.tags), frozenset(), None, f.message_id) for f in found]
        for f, result in zip(found, apply_each(wb, requests), strict=True):
            if isinstance(result, Applied) and result.ref is not None:
                done.append(f)
    return done
