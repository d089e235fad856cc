"""Failure: retry a message later, or quarantine it for a person.

A Retryable failure is retried with backoff until `retry.max_attempts`, then quarantined; a
Permanent one is quarantined at once. Nothing after the CRM work ever quarantines a message:
once its records and mail are in the CRM, only the tagging is retried, for ever. Whatever
reached the CRM before a failure is journalled, so the retry adopts it.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import replace
from typing import Any

from gateway.config import Config
from gateway.engine.model import Plan
from gateway.errors import Permanent, Retryable
from gateway.ledger import TERMINAL, Binding, Ledger, LocationRow, MessageRow
from gateway.ledger.spool import SpoolElsewhere
from gateway.ledger.states import LocationState as L
from gateway.ledger.states import MessageState as M
from gateway.pipeline.execution import Execution
from gateway.pipeline.journal import plan_text
from gateway.pipeline.tagging import Tagging

log = logging.getLogger("gateway.pipeline")


class Failure:
    def __init__(self, config: Config, ledger: Ledger, execution: Execution, tagging: Tagging) -> None:
        self.config = config
        self.ledger = ledger
        self.execution = execution
        self.tagging = tagging

    def failed(
        self,
        row: MessageRow,
        plan: Plan | None,
        results: dict[str, Any],
        exc: Retryable | Permanent,
        *,
        crm_complete: bool,
        reached_crm_done: bool,
    ) -> MessageRow:
        """Retry or quarantine after a failure; `results`: the CRM steps done before it;
        `crm_complete`: the failure came after the CRM work. Returns the row after it."""
        if isinstance(exc, Retryable):
            if crm_complete and not reached_crm_done:  # the CRM work is done: never quarantine it now
                self.execution.mark_crm_done(row, plan, results)
                reached_crm_done = True
            elif results:
                self.execution.keep_partial(row, results)
            # a mail another machine spooled is not this one's to give up on: it waits for its file
            elsewhere = isinstance(exc, SpoolElsewhere)
            return self.retry(row, str(exc), exc.retry_after, never_quarantine=reached_crm_done or elsewhere, plan=plan)
        plan = getattr(exc, "plan", None) or plan  # a rule that cannot apply carries its trace and on_error
        if crm_complete or reached_crm_done:  # nothing after crm_done ever quarantines a message
            if not reached_crm_done:
                self.execution.mark_crm_done(row, plan, results)
            return self.retry(row, str(exc), None, never_quarantine=True, plan=plan)
        if results:
            self.execution.keep_partial(row, results)
        return self.quarantine(row, str(exc), plan)

    def retry(
        self, row: MessageRow, reason: str, retry_after: float | None, *, never_quarantine: bool, plan: Plan | None
    ) -> MessageRow:
        """Retry later with backoff (`retry_after`: the CRM said when), or quarantine after
        the last attempt; the row after it."""
        r = self.config.retry
        attempts = row.attempts + 1  # the row was read under the message's lock in this run
        if attempts >= r.max_attempts and not never_quarantine:
            return self.quarantine(row, f"gave up after {attempts} attempts: {reason}", plan)
        delay = retry_after if retry_after is not None else min(r.max_delay, r.base_delay * 2 ** (attempts - 1))
        delay *= random.uniform(0.8, 1.2) if retry_after is None else 1.0
        if not self.ledger.schedule_retry(row.id, reason, delay):  # final meanwhile: it stays so
            return self.ledger.message(row.id)
        return replace(row, state=M.RETRYING, reason=reason, attempts=attempts)

    def quarantine(self, row: MessageRow, reason: str, plan: Plan | None) -> MessageRow:
        """Quarantine the message (its stored Plan: `plan`, else the one it had) and give its
        copies the error tags; those wait for `quarantine retry` if the write-back fails.
        Returns the row after it."""
        stored = plan_text(plan) if plan is not None else row.plan_json
        self.ledger.set_state(row.id, M.QUARANTINED, reason, plan_json=stored)
        after = replace(row, state=M.QUARANTINED, reason=reason, plan_json=stored)
        try:
            self.tagging.copies(after)
        except Retryable as exc:
            log.warning("could not tag quarantined message %s yet: %s", row.id, exc)
        return after

    def unparseable(self, loc: LocationRow, raw: bytes | None, exc: Exception) -> MessageRow:
        """A copy nothing can parse: a message of its own (named by its bytes' hash), quarantined."""
        raw_hash = hashlib.sha256(raw).hexdigest() if raw is not None else hashlib.sha256(loc.ref.label().encode()).hexdigest()
        b = self._bind_alone(loc, "unparseable", raw_hash)
        return self.quarantine(b.row or self.ledger.message(b.message_pk), f"unparseable: {exc}", None)

    def _bind_alone(self, loc: LocationRow, why: str, digest: str) -> Binding:
        """A message of its own for a copy whose identity is unknown, named by `digest`."""
        return self.ledger.bind(
            loc.id,
            message_id=f"<{why}-{digest[:32]}@crm-gateway>",
            content_hash=digest,
            spool_path=loc.spool_path,
            state=M.PROCESSING,
            label=loc.ref.label(),
        )

    def give_up(self, location_pk: int, reason: str) -> str:
        """The budget watchdog (or the crash count) gave up on a copy: quarantine its message
        with the reason, whatever stage it was at, with a guarded update (a worker that
        finishes late cannot undo it: `finish_many` leaves a quarantined message alone).
        Returns the message's state afterwards."""
        loc = self.ledger.location(location_pk)
        if loc.message_pk is None:  # stuck before its identity was known: parsing
            digest = hashlib.sha256(f"{reason}\0{loc.ref.label()}".encode()).hexdigest()
            b = self._bind_alone(loc, "stopped", digest)
            loc = replace(loc, message_pk=b.message_pk)
        assert loc.message_pk is not None
        row = self.ledger.message(loc.message_pk)
        if row.primary_location != loc.id or row.state in TERMINAL:  # a copy's own tagging: that copy only
            self.ledger.take_location(loc.id, (L.NEW, L.WAITING, L.TAGGING), L.UNTAGGED)
            self.ledger.add_event(row.id, "note", f"{loc.ref.label()}: {reason}")
            return self.ledger.message(row.id).state
        if row.state == M.CRM_DONE:  # nothing after the CRM work ever quarantines a message
            self.ledger.schedule_retry(row.id, reason, self.config.retry.base_delay)
            return M.RETRYING
        if self.ledger.set_state(row.id, M.QUARANTINED, reason, only_from=(M.RECEIVED, M.PROCESSING, M.RETRYING)):
            try:
                self.tagging.copies(self.ledger.message(row.id))
            except Exception as exc:  # the tags wait for `quarantine retry`; the state is what counts
                log.warning("could not tag quarantined message %s yet: %s", row.id, exc)
        return self.ledger.message(row.id).state
