"""Tagging: the tags a copy gets from its message's outcome, and their write-back.

One function, `tags_for`, decides every copy's tags, the primary's and the others'. The
primary copy is written back before its outcome is recorded (one ledger transaction holds
both); the other copies wait ('waiting') and are tagged once the outcome is in the ledger.

A copy in a mailbox another live gateway holds is left waiting: that gateway's sweep finds
it and writes its tags (a hand-over through the ledger). It is never recorded tagged here
without a write-back that reaches its mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from gateway.config import TagsConfig
from gateway.engine.model import OnError
from gateway.errors import Permanent, Retryable
from gateway.ledger import Ledger, MessageRow, SourceRef
from gateway.ledger.leases import holder
from gateway.ledger.spool import Spool
from gateway.ledger.states import LocationState as L
from gateway.ledger.states import MessageState
from gateway.ledger.states import MessageState as M
from gateway.mailboxes.base import Applied, LedgerOnly, TagRequest, Writeback, apply_each
from gateway.pipeline.items import Tagged, Work
from gateway.pipeline.journal import plan_of

log = logging.getLogger("gateway.pipeline")


@dataclass(frozen=True)
class TagChange:
    """A copy's write-back: set `add`, clear `remove`, then move."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    move: str | None


def tags_for(
    outcome: str, present: Collection[str], planned: TagChange, on_error: OnError | None, tags: TagsConfig
) -> TagChange | None:
    """A copy's tags by its message's outcome; None: nothing is written back (ignored, skipped).

    `present`: the copy's tags now; `planned`: the tags its rules set; `on_error`: the stored
    Plan's `on_error` (its tags replace the configured error tags; None: the message has no Plan)."""
    if outcome in (M.IGNORED, M.SKIPPED):
        return None
    if outcome == M.QUARANTINED:
        if on_error is None:
            return TagChange(tuple(tags.error), (), None)
        return TagChange(on_error.tags, on_error.untags, on_error.move)
    if outcome == M.REVIEW:
        return TagChange(tuple(tags.review), (), None)
    # done: the rule's tags; a review or error tag from an earlier outcome goes
    stale = tuple(t for t in (*tags.review, *tags.error) if t in present and t not in planned.add)
    return TagChange(planned.add, (*planned.remove, *stale), planned.move)


class Tagging:
    def __init__(self, tags: TagsConfig, ledger: Ledger, spool: Spool, writebacks: Mapping[str, Writeback], me: str = "") -> None:
        self.tags = tags
        self.ledger = ledger
        self.spool = spool
        self.writebacks = writebacks
        self.me = me  # this gateway's name (config `gateway.name`): who holds a mailbox's lease

    def _ours(self, ref: SourceRef) -> bool:
        """Whether this gateway writes back a copy in this mailbox: it holds the mailbox; or no
        live gateway does and it has the mailbox's write-back (a command while the gateway is
        stopped); or no gateway leases the mailbox at all (SMTP, files: tags in the ledger)."""
        held = holder(self.ledger, ref.source, ref.account)
        if held is None:
            return True
        owner, live = held
        return owner == self.me or (not live and ref.source in self.writebacks)

    def _writeback(self, ref: SourceRef) -> Writeback:
        """The copy's write-back; tags in the ledger only for a mailbox no live gateway holds
        (SMTP, files, a source no gateway runs any more). A mailbox another live gateway holds
        is that gateway's to tag: retried until it does (its retries and sweeps are its own)."""
        got = self.writebacks.get(ref.source)
        if got is not None:
            return got
        held = holder(self.ledger, ref.source, ref.account)
        if held is not None and held[1] and held[0] != self.me:
            raise Retryable(f"{ref.source} is not a source of this gateway: the gateway holding {ref.account} tags it")
        return LedgerOnly()

    def primaries(self, works: Sequence[Work]) -> list[Tagged | Exception]:
        """Write back the primary copies' tags by their Plans' outcomes, several at once per
        source where its write-back can (IMAP: one STORE for many UIDs); each copy's request
        and result, or its failure (the CRM work is done: a failure here is retried)."""
        out: list[Tagged | Exception] = [Retryable("not written back")] * len(works)
        requests: dict[int, TagRequest] = {}
        by_source: dict[str, list[int]] = {}
        for n, w in enumerate(works):
            loc = w.loc
            planned = TagChange(tuple(w.plan.tags_add), tuple(w.plan.tags_remove), w.plan.move)
            change = tags_for(w.plan.outcome, loc.tags, planned, None, self.tags)
            assert change is not None  # ignored and skipped Plans have no work to tag
            requests[n] = TagRequest(
                loc.ref, frozenset(loc.tags), frozenset(change.add), frozenset(change.remove), change.move, w.row.message_id
            )
            by_source.setdefault(loc.ref.source, []).append(n)
        for ns in by_source.values():
            applied: Sequence[Applied | Exception]
            try:
                applied = apply_each(self._writeback(requests[ns[0]].ref), [requests[n] for n in ns])
            except Exception as exc:
                failure = (
                    exc
                    if isinstance(exc, (Retryable, Permanent))
                    else Retryable(f"write-back failed: {type(exc).__name__}: {exc}")
                )
                if failure is not exc:
                    log.exception("write-back of %d copies failed", len(ns))
                applied = [failure] * len(ns)
            for n, a in zip(ns, applied, strict=True):
                out[n] = a if isinstance(a, Exception) else Tagged(works[n], requests[n], a)
        return out

    def copies(self, row: MessageRow, final_state: MessageState | None = None) -> None:
        """Write back the tags of every copy waiting for them, by the message's outcome.

        `final_state` "done": a person's decision finished the CRM work of a message whose
        copies were reopened for it; the message becomes done (or done_untagged) here."""
        untagged = False
        on_error: OnError | None = None
        if (final_state or row.state) == M.QUARANTINED:  # its tags are the stored Plan's `on_error`
            plan = plan_of(row)
            on_error = plan.on_error if plan is not None else None
        for loc in self.ledger.locations_of(row.id):
            if loc.state not in (L.WAITING, L.NEW) or (
                loc.state == L.NEW and row.state not in (M.QUARANTINED, M.IGNORED, M.SKIPPED)
            ):
                continue
            if not self._ours(loc.ref):  # another gateway's mailbox: its sweep tags the copy
                continue
            if not self.ledger.take_location(loc.id, [loc.state], L.TAGGING):
                continue
            planned = TagChange(tuple(loc.tags_add), tuple(loc.tags_remove), loc.move_to)
            change = tags_for(final_state or row.state, loc.tags, planned, on_error, self.tags)
            if change is None:
                self.ledger.location_tagged(loc.id, loc.tags, L.NONE)
                continue
            try:
                applied = self._writeback(loc.ref).apply(
                    loc.ref, frozenset(loc.tags), frozenset(change.add), frozenset(change.remove), change.move, row.message_id
                )
            except BaseException:  # any failure: the copy waits again rather than stay 'tagging'
                self.ledger.take_location(loc.id, [L.TAGGING], loc.state)
                raise
            if applied.ref is None:
                untagged = True
                self.ledger.location_tagged(loc.id, loc.tags, L.UNTAGGED)
                self.ledger.add_event(row.id, "done_untagged", f"{loc.ref.label()} is gone: {applied.note}")
            else:
                self.ledger.location_tagged(
                    loc.id, sorted(applied.tags), L.APPLIED, applied.ref if applied.ref != loc.ref else None
                )
                if change.add or change.remove or change.move:
                    self.ledger.add_event(row.id, "tagged", tag_note(applied, change))
        if final_state == M.DONE:
            self.ledger.set_state(row.id, M.DONE_UNTAGGED if untagged else M.DONE, "", only_from=[M.CRM_DONE, M.PROCESSING])
            # A copy may have started waiting after the pass above and seen no final state yet:
            # now that the state is final, one more pass tags it (the guard makes it once).
            self.copies(self.ledger.message(row.id))
            if not untagged:
                for loc in self.ledger.locations_of(row.id):
                    self.spool.discard(loc.spool_path)


def tag_note(applied: Applied, change: TagChange | TagRequest) -> str:
    """The `tagged` event's detail."""
    assert applied.ref is not None
    move = f" moved to {change.move}" if change.move else ""
    return f"{applied.ref.label()}: +{sorted(change.add)} -{sorted(change.remove)}{move}"
