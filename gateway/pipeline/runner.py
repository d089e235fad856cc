"""The runner: copies through claim → evaluate → journal intents → creates → attach → notes → tag →
record, each step over a batch of work items (DESIGN.md "Flow of one message", "Pipeline
batches").

New copies of a batch are claimed together; copies linked before (retries, crash replays, a
copy's second visit) skip the claim. Then the primaries with work left share the ledger's and
the CRM's transactions, whatever their starting point: a fresh Plan, a replay (a Work whose
journal is filled), a message that only waits for its tags. A batch of one is the same code.
Outcomes are those of the messages one after the other: a mail whose rules looked up what a
mail before it in the batch creates or attaches is evaluated again after that. A step that
fails for a batch is done again for each of its items alone, so one item's failure stays
that item's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gateway.engine.model import Plan
from gateway.errors import Permanent, Retryable
from gateway.ledger import TERMINAL, Ledger, LocationRow, MessageRow
from gateway.ledger.locks import KeyedLocks
from gateway.ledger.states import MessageState as M
from gateway.pipeline import claim
from gateway.pipeline.budget import Stage
from gateway.pipeline.claim import Claims
from gateway.pipeline.evaluation import Evaluation, creates_for
from gateway.pipeline.execution import Execution
from gateway.pipeline.failure import Failure
from gateway.pipeline.hooks import Hooks
from gateway.pipeline.items import Claimed, Outcome, Outcomes, Work
from gateway.pipeline.recording import Recording, nothing_to_do, tagged
from gateway.pipeline.tagging import Tagging

log = logging.getLogger("gateway.pipeline")


class Runner:
    def __init__(
        self,
        ledger: Ledger,
        hooks: Hooks,
        claims: Claims,
        evaluation: Evaluation,
        execution: Execution,
        tagging: Tagging,
        recording: Recording,
        failure: Failure,
        message_locks: KeyedLocks,
    ) -> None:
        self.ledger = ledger
        self.hooks = hooks
        self.claims = claims
        self.evaluation = evaluation
        self.execution = execution
        self.tagging = tagging
        self.recording = recording
        self.failure = failure
        self._message_locks = message_locks

    def handle_many(self, items: Sequence[tuple[int, LocationRow | None]]) -> Outcomes:
        """Each copy's message state afterwards, or the exception that copy met (the caller
        retries it; every step before it is in the journal). `items`: a copy, and its row
        when the caller holds it (a fresh intake), saving a read."""
        started = time.monotonic()
        out: Outcomes = {}
        try:
            known = self.ledger.locations([pk for pk, loc in items if loc is None])
        except Exception as exc:  # the ledger is away: each copy is retried
            return {pk: exc for pk, _ in items}
        locs: list[LocationRow] = []
        for pk, loc in items:
            if loc is None and pk not in known:
                out[pk] = KeyError(pk)
            else:
                locs.append(loc or known[pk])
        linked = [Claimed(loc, None) for loc in locs if loc.message_pk is not None]
        if linked:  # linked before: retries, replays, copies' second visits
            self._run(linked, started, out)
        for part in claim.by_size([loc for loc in locs if loc.message_pk is None], claim.BATCH_BYTES):
            self._new(part, started, out)
        return out

    def _new(self, fresh: Sequence[LocationRow], started: float, out: Outcomes) -> None:
        """New copies: claim them together, then the CRM work of the messages they claimed."""
        try:
            claimed = self.claims.claim(fresh, out)
        except Exception as exc:
            out.update((loc.id, exc) for loc in fresh if loc.id not in out)
            return
        if claimed:
            self._run(claimed, started, out)

    def _run(self, claimed: Sequence[Claimed], started: float, out: Outcomes) -> None:
        """Copies linked to their messages, under the messages' locks: the primaries that have
        work left do it together; then the other copies are visited."""
        with self._message_locks.many([str(c.loc.message_pk) for c in claimed]):
            work: list[Claimed] = []
            visits: list[Claimed] = []
            for c in claimed:
                assert c.loc.message_pk is not None
                try:
                    if c.row is None or c.row.primary_location != c.loc.id:
                        # a copy, or a message another worker may have moved on
                        c = replace(c, row=self.ledger.message(c.loc.message_pk))
                except Exception as exc:
                    out[c.loc.id] = exc
                    continue
                (work if _has_work(c) else visits).append(c)
            while work:
                work = self._steps(work, started, out)
            # Then the copies: a copy of a mail handled in this batch is evaluated after its
            # primary's CRM work, and tagged at once, as one after the other would.
            for c in visits:
                try:
                    self._visit(c, started, out)
                except Exception as exc:
                    out[c.loc.id] = exc

    def _visit(self, c: Claimed, started: float, out: Outcomes) -> None:
        """A copy with no CRM work to do: another copy of its mail waits for its tags; the
        primary of a message that is final tags the copies still waiting."""
        loc, row = c.loc, c.row
        assert row is not None
        if row.primary_location != loc.id:
            self.hooks.stage((loc.id,), Stage.WRITEBACK)
            row = self.evaluation.copy(loc, row, c.message)
        elif row.state in TERMINAL:
            self.tagging.copies(row)  # tags copies only: the message's row stays as it is
        else:  # retrying, not due yet
            out[loc.id] = row.state
            return
        self.recording.log(loc, row, started)
        out[loc.id] = row.state

    # ---- the steps ----------------------------------------------------------------------

    def _steps(self, claimed: Sequence[Claimed], started: float, out: Outcomes) -> list[Claimed]:
        """The CRM work of primary copies, under their messages' locks; returns the copies to
        evaluate again once this batch's CRM work is done."""
        works, outcomes, later = self._evaluate(claimed, started, out)
        self.hooks.stage([w.loc.id for w in works], Stage.CRM)
        works = self._journal(works, started, out)
        works = self._creates(works, started, out)
        works = self._attach(works, started, out)
        works = self._notes(works, started, out)
        self.hooks.stage([w.loc.id for w in works], Stage.WRITEBACK)
        outcomes += self._tag(works, started, out)
        self.hooks.stage([o.loc.id for o in outcomes], Stage.RECORD)
        self.recording.record(outcomes, started, out)
        return later

    def _evaluate(
        self, claimed: Sequence[Claimed], started: float, out: Outcomes
    ) -> tuple[list[Work], list[Outcome], list[Claimed]]:
        works: list[Work] = []
        outcomes: list[Outcome] = []
        later: list[Claimed] = []
        attaching: set[str] = set()  # Message-IDs of this batch whose attach is still to come
        creating: set[str] = set()  # addresses and @domains this batch's Plans create records for
        for c in claimed:
            assert c.row is not None
            try:
                w = self.evaluation.start(c)
            except Exception as exc:
                self._failed(
                    c.loc, c.row, None, {}, exc, started, out, crm_complete=False, reached_crm_done=c.row.state == M.CRM_DONE
                )
                continue
            if isinstance(w, MessageRow):
                self.recording.log(c.loc, w, started)
                out[c.loc.id] = w.state
                continue
            if w.fresh and (w.looked.ids & attaching or w.looked.keys & creating):
                # It looked up a person, domain or thread that a mail before it in this batch
                # is about to create or attach: evaluated again once that is done. What
                # depends on it waits too, so the order stays the one of the batch.
                later.append(Claimed(c.loc, c.row, w.message, w.raw))
                attaching.add(w.message.message_id)
                creating.update(w.looked.keys)
            elif w.plan.outcome in ("ignored", "skipped"):
                outcomes.append(nothing_to_do(w.loc, w.row, w.plan))
            else:
                works.append(w)
                attaching.add(w.message.message_id)
                creating.update(creates_for(w.plan))
        return works, outcomes, later

    def _journal(self, works: list[Work], started: float, out: Outcomes) -> list[Work]:
        """Intents first, for the Plans that need them (one ledger transaction; one per
        message if that fails): a record created before a crash must be adopted as created."""
        needs = self.execution.needs_intents
        todo = [w for w in works if w.fresh and needs(w.plan)]
        if not todo:
            return works
        journaled: list[Work] = []
        try:
            journaled = self.execution.start(todo)
        except Exception as exc:
            if len(todo) == 1:
                self._failed_work(todo[0], exc, started, out, crm_complete=False)
            else:
                for w in todo:
                    try:
                        journaled += self.execution.start([w])
                    except Exception as alone:
                        self._failed_work(w, alone, started, out, crm_complete=False)
        by_pk = {w.loc.id: w for w in journaled}
        return [by_pk.get(w.loc.id, w) for w in works if w.loc.id not in out]

    def _creates(self, works: list[Work], started: float, out: Outcomes) -> list[Work]:
        """Each message's creates: made or adopted, one message after the other."""
        going_on: list[Work] = []
        for w in works:
            try:
                going_on.append(w if w.crm_done else self.execution.creates(w))
            except Exception as exc:
                self._failed_work(w, exc, started, out, crm_complete=False)
        return going_on

    def _attach(self, works: list[Work], started: float, out: Outcomes) -> list[Work]:
        """The attaches, in one CRM transaction where the connector can. If the CRM refuses the
        batch, each mail on its own finds out why; none of them is a first attempt then."""
        attaching = [w for w in works if self.execution.attaches(w)]
        try:
            self.execution.attach(attaching)
            return works
        except Exception as exc:
            if len(attaching) == 1:
                self._failed_work(attaching[0], exc, started, out, crm_complete=False)
                return [w for w in works if w.loc.id not in out]
            log.info("batch of %d attaches refused (%s); attaching one by one", len(attaching), exc)
        for w in attaching:
            try:
                self.execution.attach([replace(w, fresh=False)])  # its results are w's
            except Exception as exc:
                self._failed_work(w, exc, started, out, crm_complete=False)
        return [w for w in works if w.loc.id not in out]

    def _notes(self, works: list[Work], started: float, out: Outcomes) -> list[Work]:
        """Each message's notes, after its attach (a note never lands where the mail did not)."""
        going_on: list[Work] = []
        for w in works:
            try:
                self.execution.notes(w)
                going_on.append(w)
            except Exception as exc:
                self._failed_work(w, exc, started, out, crm_complete=False)
        return going_on

    def _tag(self, works: Sequence[Work], started: float, out: Outcomes) -> list[Outcome]:
        if any(not w.crm_done for w in works):
            self.hooks.step("crm_done")
        outcomes: list[Outcome] = []
        for w, done in zip(works, self.tagging.primaries(works), strict=True):
            if isinstance(done, Exception):
                self._failed_work(w, done, started, out, crm_complete=True)
                continue
            self.hooks.step("tagged")
            outcomes.append(tagged(done))
        return outcomes

    # ---- failure ------------------------------------------------------------------------

    def _failed_work(self, w: Work, exc: Exception, started: float, out: Outcomes, *, crm_complete: bool) -> None:
        self._failed(w.loc, w.row, w.plan, w.results, exc, started, out, crm_complete=crm_complete, reached_crm_done=w.crm_done)

    def _failed(
        self,
        loc: LocationRow,
        row: MessageRow,
        plan: Plan | None,
        results: dict[str, Any],
        exc: Exception,
        started: float,
        out: Outcomes,
        *,
        crm_complete: bool,
        reached_crm_done: bool,
    ) -> None:
        """Retry or quarantine a message after a failure of its own; anything else (the ledger
        is away, a bug) goes to `out` for the caller to retry the copy."""
        if not isinstance(exc, (Retryable, Permanent)):
            out[loc.id] = exc
            return
        try:
            after = self.failure.failed(row, plan, results, exc, crm_complete=crm_complete, reached_crm_done=reached_crm_done)
            self.recording.log(loc, after, started)
            out[loc.id] = after.state
        except Exception as failure:
            out[loc.id] = failure


def _has_work(c: Claimed) -> bool:
    """Whether the copy is its message's primary and the message has CRM work (or its tags)
    left: not final, and not a retry whose time has not come."""
    row = c.row
    assert row is not None
    if row.primary_location != c.loc.id or row.state in TERMINAL:
        return False
    return not (row.state == M.RETRYING and row.next_attempt_at and row.next_attempt_at > datetime.now(UTC))
