"""Recording: a message's outcome in the ledger, then the copies that wait for it.

The results of the CRM steps, the final state, the primary copy's tags and the tags its
rules planned go into one transaction per batch (one per message if the batch's fails).
Then the other copies are tagged and the spooled mail is dropped. One `event=message` log
line per message handled, whatever became of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from gateway.engine.model import Plan
from gateway.ledger import Finish, Ledger, LocationRow, MessageRow
from gateway.ledger.spool import Spool
from gateway.ledger.states import LocationState as L
from gateway.ledger.states import MessageState as M
from gateway.pipeline.items import Outcome, Outcomes, Tagged
from gateway.pipeline.journal import evaluated_note, plan_of, plan_text
from gateway.pipeline.tagging import Tagging, tag_note

log = logging.getLogger("gateway.pipeline")


def nothing_to_do(loc: LocationRow, row: MessageRow, plan: Plan) -> Outcome:
    """An ignored or skipped message: nothing to write anywhere, no tags."""
    text = plan_text(plan)
    finish = Finish(
        row.id, state=plan.outcome, reason=plan.reason, plan_json=text, location_pk=loc.id, tags=loc.tags, location_state=L.NONE
    )
    after = replace(row, state=plan.outcome, reason=plan.reason, plan_json=text)
    return Outcome(loc, row, finish, after, tuple(plan.touched))


def tagged(t: Tagged) -> Outcome:
    """A message whose CRM work is done and whose primary copy is written back."""
    w, request, applied = t.work, t.request, t.applied
    loc, row, plan = w.loc, w.row, w.plan
    review = plan.outcome == "review"
    state = M.REVIEW if review else (M.DONE if applied.ref is not None else M.DONE_UNTAGGED)
    reason = (plan.review.reason if plan.review else plan.reason) if review else ""
    stored_plan = row.plan_json is not None  # stored with the intents, or by an earlier run
    events_ = [] if stored_plan else [("processing", evaluated_note(plan))]
    events_ += [("crm_done", "CRM work committed")] if w.results else []
    if applied.ref is None:
        events_.append(("done_untagged", f"{loc.ref.label()} is gone: {applied.note}"))
    elif request.add or request.remove or request.move:
        events_.append(("tagged", tag_note(applied, request)))
    # The rule tags are stored as this copy's planned tags too: a review resolved later applies them.
    finish = Finish(
        row.id,
        state=state,
        reason=reason,
        plan_json=None if stored_plan else plan_text(plan),
        results=w.results,
        location_pk=loc.id,
        tags=sorted(applied.tags) if applied.ref is not None else loc.tags,
        location_state=L.APPLIED if applied.ref is not None else L.UNTAGGED,
        planned=(plan.tags_add, plan.tags_remove, plan.move),
        moved_to=applied.ref if applied.ref is not None and applied.ref != loc.ref else None,
        events_=tuple(events_),
        results_are_new=not stored_plan,
    )
    return Outcome(loc, row, finish, replace(row, state=state, reason=reason), tuple(plan.touched))


class Recording:
    def __init__(self, ledger: Ledger, spool: Spool, tagging: Tagging) -> None:
        self.ledger = ledger
        self.spool = spool
        self.tagging = tagging

    def record(self, outcomes: Sequence[Outcome], started: float, out: Outcomes) -> None:
        """The outcomes in one ledger transaction (one by one if that fails), then tag the
        copies waiting for them; each copy's state, or what went wrong, goes to `out`."""
        if not outcomes:
            return
        try:
            waiting: list[list[int] | Exception] = list(self.ledger.finish_many([o.finish for o in outcomes]))
        except Exception:
            waiting = []
            for o in outcomes:
                try:
                    waiting.append(self.ledger.finish_many([o.finish])[0])
                except Exception as exc:  # the caller retries it: attach is idempotent, tags too
                    waiting.append(exc)
        for o, copies in zip(outcomes, waiting, strict=True):
            if isinstance(copies, Exception):
                out[o.loc.id] = copies
                continue
            try:
                self._recorded(o, copies)
                self.log(o.loc, o.after, started, o.rules)
                out[o.loc.id] = o.after.state
            except Exception as exc:
                out[o.loc.id] = exc

    def _recorded(self, o: Outcome, waiting: list[int]) -> None:
        """After the outcome is in the ledger: tag the copies that wait for it, drop the spool file."""
        if waiting:
            self.tagging.copies(self.ledger.message(o.row.id))
        if o.after.state == M.DONE:
            self.spool.discard(o.loc.spool_path)
            if o.row.spool_path != o.loc.spool_path:
                self.spool.discard(o.row.spool_path)

    def log(self, loc: LocationRow, row: MessageRow, started: float, rules: Sequence[str] | None = None) -> None:
        """The message's log line; `rules`: those that touched it, else read from its stored Plan."""
        if rules is None:
            plan = plan_of(row)
            rules = plan.touched if plan is not None else ()
        # A message that failed for good needs a person: it must show when filtering on warnings.
        log.log(
            logging.WARNING if row.state == M.QUARANTINED else logging.INFO,
            "message",
            extra={
                "fields": {
                    "id": row.id,
                    "result": row.state,
                    "source": loc.ref.source,
                    "folder": loc.ref.folder,
                    "message_id": row.message_id,
                    "from": row.from_address,
                    "rules": ",".join(rules),
                    "reason": row.reason[:200],
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
