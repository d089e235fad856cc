"""What engine tests (and others evaluating rules without a CRM) share: `FakeCrm`, a test
double of the engine's read-only CRM view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.crm.base import PartyRef
from gateway.message import addresses


@dataclass
class FakeCrm:
    """Test double of the read-only CRM view: records with emails and domains, in dicts."""

    records: list[tuple[PartyRef, tuple[str, ...], str]] = field(default_factory=list)
    threads: dict[str, list[PartyRef]] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)

    def add(
        self, kind: str, id: str, *emails: str, name: str = "", domain: str = "", created_at: datetime | None = None
    ) -> PartyRef:
        ref = PartyRef(kind, id, name or id, created_at)  # type: ignore[arg-type]
        self.records.append((ref, tuple(addresses.key(e) for e in emails), domain))
        return ref

    def find(self, address: str, kinds: Sequence[str]) -> list[PartyRef]:
        self.calls.append(("find", (address, tuple(kinds))))
        k = addresses.key(address)
        return [r for r, emails, _ in self.records if r.kind in kinds and k in emails]

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        self.calls.append(("find_by_domain", domain))
        return [r for r, _, d in self.records if r.kind == "account" and d == domain]

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        self.calls.append(("thread_parents", tuple(message_ids)))
        out: list[PartyRef] = []
        for mid in message_ids:
            out += [r for r in self.threads.get(mid, []) if r not in out]
        return out
