"""Evaluation: where a message's CRM work starts, and its Plan.

The Plan is evaluated once and stored; a retry after a crash replays the stored Plan against
the journal (a `Work` that is not `fresh`), so a step that was done is adopted and never done
twice, and a record created before the crash is still counted as created. Copies of a mail
are evaluated too, only for their own tags.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gateway.config import Config
from gateway.config.context import Contexts
from gateway.config.rulesholder import RulesHolder
from gateway.crm.base import Connector, PartyKind, PartyRef
from gateway.engine.model import Plan
from gateway.engine.plan import evaluate
from gateway.errors import Permanent, Retryable
from gateway.ledger import TERMINAL, Ledger, LocationRow, MessageRow
from gateway.ledger.states import LocationState as L
from gateway.ledger.states import MessageState as M
from gateway.message import addresses
from gateway.message.parsing import Message
from gateway.pipeline.budget import Stage
from gateway.pipeline.claim import Reader
from gateway.pipeline.hooks import Hooks
from gateway.pipeline.items import Claimed, Looked, Work
from gateway.pipeline.journal import CRM_DONE, plan_of
from gateway.pipeline.tagging import Tagging

log = logging.getLogger("gateway.pipeline")

# A message in these states may have a journal to replay (its Plan is stored with the intents).
_REPLAYABLE = (M.PROCESSING, M.CRM_DONE, M.RETRYING)


class Evaluation:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        crm: Connector,
        rules: RulesHolder,
        contexts: Contexts,
        reader: Reader,
        tagging: Tagging,
        hooks: Hooks,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.crm = crm
        self.rules = rules
        self.contexts = contexts
        self.reader = reader
        self.tagging = tagging
        self.hooks = hooks

    def start(self, c: Claimed) -> Work | MessageRow:
        """The work of a primary copy: its Plan replayed from the journal, or evaluated now.
        A MessageRow: the message needed no work (dated before `since`), its row after."""
        loc, row = c.loc, c.row
        assert row is not None
        raw = c.raw if c.raw is not None else self.reader.read(row.spool_path or loc.spool_path, loc.ref)
        message = c.message
        if message is None:
            self.hooks.stage((loc.id,), Stage.PARSE)
            message = self.reader.parse(raw, loc.seen_at, loc.declared_size)
        if message.headers_only:
            raise Permanent(
                f"over max_message_size ({message.raw_size} bytes > {self.config.max_message_size}): "
                "only headers, size and hash were kept"
            )
        if self.config.since and message.date.date() < self.config.since:
            self.ledger.set_state(row.id, M.IGNORED, f"dated {message.date.date()}, before `since` {self.config.since}")
            after = self.ledger.message(row.id)
            self.tagging.copies(after)
            return after
        journal = self.ledger.journal(row.id) if row.plan_json and row.state in _REPLAYABLE else {}
        stored = plan_of(row) if journal else None
        if stored is not None:  # a replay: the same Plan, adopted step by step
            # The CRM work finished before (the tagging failed): it must never be redone or
            # quarantined, whatever state a retry left the row in.
            crm_done = row.state == M.CRM_DONE or journal.get(CRM_DONE) is not None
            return Work(loc, row, message, raw, stored, fresh=False, journal=journal, crm_done=crm_done)
        self.hooks.stage((loc.id,), Stage.RULES)
        looked = _Lookups(self.crm)
        plan = evaluate(message, self.contexts.for_ref(loc.ref, frozenset(loc.tags)), self.rules.current, looked)
        return Work(
            loc,
            row,
            message,
            raw,
            plan,
            fresh=True,
            crm_done=row.state == M.CRM_DONE,
            looked=Looked(frozenset(looked.keys), frozenset(looked.ids)),
        )

    def copy(self, loc: LocationRow, row: MessageRow, message: Message | None) -> MessageRow:
        """Another copy of a known mail: attach nothing, only give it its own tags (it waits
        for its message's outcome to know which). Returns the message's row."""
        if loc.state == L.NEW:
            add: Sequence[str] = []
            remove: Sequence[str] = []
            move: str | None = None
            try:
                if message is None:
                    message = self.reader.parse(self.reader.read(loc.spool_path, loc.ref), loc.seen_at, loc.declared_size)
                plan = evaluate(message, self.contexts.for_ref(loc.ref, frozenset(loc.tags)), self.rules.current, self.crm)
                if plan.outcome not in ("ignored", "skipped"):
                    add, remove, move = plan.tags_add, plan.tags_remove, plan.move
            except (Retryable, Permanent) as exc:
                first = plan_of(row)  # the CRM is away: the first copy's tags will do
                if first is not None:
                    add, remove, move = first.tags_add, first.tags_remove, first.move
                log.info("copy evaluated without the CRM (%s); using the first copy's tags", exc)
            self.ledger.plan_location(loc.id, add, remove, move, state=L.WAITING)
        row = self.ledger.message(row.id)  # set waiting first, then look: one of the two workers tags it
        if row.state in TERMINAL:
            self.tagging.copies(row)  # tags copies only: the message's row stays as it is
        return row


def creates_for(plan: Plan) -> set[str]:
    """The addresses (persons) and @domains (accounts) the Plan creates records for."""
    out: set[str] = set()
    for pc in plan.creates:
        if "@" in pc.address:
            out.add(addresses.key(pc.address))
        if pc.kind == "account":
            out.add("@" + (pc.address.rpartition("@")[2] or pc.address).strip().lower())
    return out


class _Lookups:
    """The CRM as the rules of one evaluation see it, noting what they look up (persons by
    address, accounts by domain, threads by Message-ID): see `Looked`."""

    def __init__(self, crm: Connector) -> None:
        self._crm = crm
        self.keys: set[str] = set()  # address keys and @domains
        self.ids: set[str] = set()  # Message-IDs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._crm, name)

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        self.keys.add(addresses.key(address))
        return self._crm.find(address, kinds)

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        self.keys.add("@" + domain.strip().lstrip("@").lower())
        return self._crm.find_by_domain(domain)

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        self.ids.update(message_ids)
        return self._crm.thread_parents(message_ids)
