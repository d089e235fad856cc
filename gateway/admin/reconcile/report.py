"""What `reconcile` found, as typed values: the kinds of finding, a finding, a folder's and the
whole run's report, with the JSON form (`reconcile --json`, later the HTTP API) and the text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.ledger.refs import SourceRef


class FindingKind(StrEnum):
    UNKNOWN = "unknown"  # in the mailbox, unknown to the ledger
    NOT_DONE = "not_done"  # known to the ledger, its message not in a final state
    MISSING_IN_CRM = "missing_in_crm"  # done, its email is not in the CRM
    UNTAGGED = "untagged"  # done, the mailbox copy lacks tags the ledger says it has
    DUPLICATE_IN_CRM = "duplicate_in_crm"  # more CRM emails for one Message-ID than mails the ledger knows


TITLES = {
    FindingKind.UNKNOWN: "in the mailbox, unknown to the ledger",
    FindingKind.NOT_DONE: "known to the ledger, not done",
    FindingKind.MISSING_IN_CRM: "done, missing in the CRM",
    FindingKind.UNTAGGED: "done, not tagged in the mailbox",
    FindingKind.DUPLICATE_IN_CRM: "in the CRM twice",
}


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    ref: SourceRef  # the copy (for a CRM finding: the message's copy in this folder)
    message_id: str = ""
    message_pk: int | None = None
    location_pk: int | None = None
    detail: str = ""  # the state, the missing keywords, the CRM ids
    tags: tuple[str, ...] = ()  # UNTAGGED: the tags the ledger says the copy has
    fixable: bool = True  # False: `--fix` cannot act on it (the mail is gone), a person must

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.ref.item_key,
            "uidvalidity": self.ref.uidvalidity or None,
            "message_id": self.message_id or None,
            "message": self.message_pk,
            "detail": self.detail,
        }

    def line(self) -> str:
        uv = f"UIDVALIDITY {self.ref.uidvalidity} UID " if self.ref.uidvalidity else ""
        mid = f" {self.message_id}" if self.message_id else ""
        msg = f" (message {self.message_pk})" if self.message_pk is not None else ""
        return f"{uv}{self.ref.item_key}{mid}{msg}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class FolderReport:
    source: str
    account: str
    folder: str
    supported: bool = True
    note: str = ""  # why it was not checked, or what was not (duplicates with some CRMs)
    copies: int = 0  # what the folder holds now
    findings: tuple[Finding, ...] = ()
    fixed: tuple[Finding, ...] = ()  # what `--fix` handed to the pipeline or tagged again

    def of(self, kind: FindingKind) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "account": self.account,
            "folder": self.folder,
            "supported": self.supported,
            "note": self.note,
            "copies": self.copies,
            "findings": {k.value: [f.to_json() for f in self.of(k)] for k in FindingKind},
            "fixed": [f.to_json() for f in self.fixed],
        }


@dataclass(frozen=True)
class ReconcileReport:
    at: datetime
    folders: tuple[FolderReport, ...]
    fix: bool = False

    def counts(self) -> dict[FindingKind, int]:
        return {k: sum(len(f.of(k)) for f in self.folders) for k in FindingKind}

    @property
    def reconciled(self) -> bool:
        """Nothing found (after fixing, with `fix`): exit code 0."""
        return not any(f.findings for f in self.folders)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "fix": self.fix,
            "reconciled": self.reconciled,
            "counts": {k.value: n for k, n in self.counts().items()},
            "fixed": sum(len(f.fixed) for f in self.folders),
            "folders": [f.to_json() for f in self.folders],
        }

    def text(self) -> str:
        lines = []
        for f in self.folders:
            head = f"{f.source}:{f.account}/{f.folder}"
            if not f.supported:
                lines.append(f"{f.source}: {f.note}")
                continue
            lines.append(f"{head}: {f.copies} copies, " + (f"{len(f.findings)} findings" if f.findings else "reconciled"))
            if f.note:
                lines.append(f"  note: {f.note}")
            for k in FindingKind:
                found = f.of(k)
                if found:
                    lines.append(f"  {TITLES[k]} ({k.value}): {len(found)}")
                    lines.extend(f"    {x.line()}" for x in found)
            if f.fixed:
                lines.append(f"  fixed: {len(f.fixed)}")
                lines.extend(f"    {x.kind.value}: {x.line()}" for x in f.fixed)
        counts = ", ".join(f"{k.value} {n}" for k, n in self.counts().items() if n)
        lines.append("reconciled: nothing lost" if self.reconciled else f"findings: {counts}")
        return "\n".join(lines)
