"""Handing a batch of copies to the pipeline, in whatever process holds them.

Around the pipeline: the in-hand marks a crash leaves behind (gateway/ledger/work.py), and
what a failure outside the pipeline's own handling becomes (a retry, never a lost message).
Worker threads, worker processes and the commands that handle one message now (`process`,
`quarantine retry`, `reprocess`) all come through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.config import Config
from gateway.errors import Retryable
from gateway.ledger import TERMINAL, Ledger
from gateway.ledger import work as ledger_work
from gateway.pipeline import Pipeline

log = logging.getLogger("gateway.service")


def _no_fresh_row(_pk: int) -> None:
    return None


def _nothing() -> None:
    return None


class BatchHandler:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        pipeline: Pipeline,
        *,
        fresh: Callable[[int], Any] = _no_fresh_row,
        copies_later: Callable[[], None] = _nothing,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.pipeline = pipeline
        self._fresh = fresh  # a row the intake just wrote, to save the pipeline a read
        self._copies_later = copies_later  # a copy failed outside the pipeline: the sweep hands it over again

    def handle(self, pk: int) -> str:
        return self.handle_many([pk])[pk]

    def handle_many(self, pks: list[int]) -> dict[int, str]:
        """Handle a batch of copies; each one's state, a failure turned into a retry."""
        if not pks:
            return {}
        try:  # a crash from here on leaves these marked: the next start counts it (gateway/ledger/work.py)
            ledger_work.started(self.ledger, pks)
        except Exception as exc:
            log.warning("locations %s: not marked in hand: %s", pks, exc)
        try:
            outcomes = self.pipeline.handle_many([(pk, self._fresh(pk)) for pk in pks])
        except Exception as exc:  # a bug outside any one message: each is retried on its own
            outcomes = {pk: exc for pk in pks}
        try:
            ledger_work.finished(self.ledger, pks)
        except Exception as exc:
            log.warning("locations %s: not unmarked: %s", pks, exc)
        states: dict[int, str] = {}
        for pk in pks:
            outcome = outcomes.get(pk) or RuntimeError("no outcome for this copy")
            if isinstance(outcome, str):
                states[pk] = outcome
            elif isinstance(outcome, Retryable):  # the ledger itself was away (locked, unreachable): try again
                log.warning("location %s: %s; will retry", pk, outcome)
                self._retry_location(pk, str(outcome))
                states[pk] = "retrying"
            else:  # a bug must not lose the message: keep it, retry, and say so
                log.error("location %s: unexpected error", pk, exc_info=outcome)
                self._retry_location(pk, f"internal error: {type(outcome).__name__}: {outcome}")
                states[pk] = "retrying"
        return states

    def _retry_location(self, pk: int, reason: str) -> None:
        """A failure outside the pipeline's own handling. The message is retried when this copy
        is the one doing its work; a failure of another copy (tagging it, say) or before the
        copy was linked leaves the copy open, and the sweep hands it over again later."""
        try:
            loc = self.ledger.location(pk)
            row = self.ledger.message(loc.message_pk) if loc.message_pk is not None else None
            if row is not None and row.primary_location == pk and row.state not in TERMINAL:
                self.ledger.schedule_retry(row.id, reason, self.config.retry.base_delay)
            else:
                self._copies_later()
        except Exception:
            log.exception("location %s: could not record the retry; it stays open for the next start", pk)
