"""The states of a message and of a copy (location), and the moves between them.

The values are the strings stored in the ledger and shown by `explain`, `status` and the
JSON output; they are StrEnums, so a member equals its string and code that compares with
the plain strings keeps working. Every state change the ledger writes names the state it
comes from and is checked against the tables below: a move not in them raises
`IllegalTransition` and writes nothing.

A message (DESIGN.md "Flow of one message"):

    (new) ─▶ received | processing | review (a mail a person files by hand: ledger/claims.py)
    received ─▶ processing ─▶ crm_done ─▶ done | done_untagged | review
        │            │            └──▶ retrying (tagging failed; never quarantined now)
        └────────────┴──▶ done | done_untagged | review | ignored | skipped | retrying | quarantined
    retrying ─▶ everything processing may reach, and processing
    review ─▶ crm_done (a person resolved it)
    quarantined, review, ignored, skipped ─▶ received (quarantine retry, reprocess)
    done, done_untagged ─▶ received (only `reopen` naming steps to redo, REDO_MOVES: reconcile --fix)
    any state ─▶ forgotten (erased on request)

A copy: new ─▶ waiting ─▶ tagging ─▶ applied | untagged | none, with the ways back that
failures, a restart, a review decision and a reopened message take.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class MessageState(StrEnum):
    RECEIVED = "received"  # claimed, not evaluated yet
    PROCESSING = "processing"  # its Plan is stored and its CRM steps' intents journalled
    CRM_DONE = "crm_done"  # the CRM work is committed; only the tags are still to write
    DONE = "done"
    DONE_UNTAGGED = "done_untagged"  # done, but a copy was gone when its tags were written
    IGNORED = "ignored"
    SKIPPED = "skipped"
    REVIEW = "review"  # waits for a person
    RETRYING = "retrying"  # failed for now; `next_attempt_at` says when again
    QUARANTINED = "quarantined"  # failed for good; waits for `quarantine retry`
    FORGOTTEN = "forgotten"  # erased on request: a tombstone that keeps its copies known


class LocationState(StrEnum):
    NEW = "new"  # seen; its message not handled yet (or it is the primary copy, in work)
    WAITING = "waiting"  # a copy whose tags wait for the message's outcome
    TAGGING = "tagging"  # its write-back is under way (a crash leaves it so: reset at start)
    APPLIED = "applied"  # its tags are written
    UNTAGGED = "untagged"  # it could not be tagged (gone from the mailbox, or given up on)
    NONE = "none"  # nothing to tag (ignored, skipped)


M, L = MessageState, LocationState

# Final states: no worker handles the message again until a person or a command reopens it.
TERMINAL = frozenset({M.DONE, M.DONE_UNTAGGED, M.IGNORED, M.SKIPPED, M.REVIEW, M.QUARANTINED, M.FORGOTTEN})
# Copies whose work is not finished (re-queued at start, tagged by the message's outcome).
LOCATION_OPEN = (L.NEW, L.WAITING)

# What a message in work may become: its outcome, a retry or quarantine, or its Plan stored.
_OUTCOMES = frozenset({M.DONE, M.DONE_UNTAGGED, M.REVIEW, M.IGNORED, M.SKIPPED})
_IN_WORK = frozenset({M.PROCESSING, M.CRM_DONE, *_OUTCOMES, M.RETRYING, M.QUARANTINED, M.FORGOTTEN})
# Sent through the rules again: `quarantine retry` and `reprocess` reopen these.
_REOPENED = frozenset({M.RECEIVED, M.FORGOTTEN})

MESSAGE_MOVES: Mapping[MessageState, frozenset[MessageState]] = {
    M.RECEIVED: _IN_WORK | {M.RECEIVED},
    M.PROCESSING: _IN_WORK | {M.RECEIVED},
    M.RETRYING: _IN_WORK | {M.RECEIVED},
    # The CRM work is committed: only tagging is left, so never quarantined, ignored or
    # evaluated again (a review Plan whose tagging failed ends in review).
    M.CRM_DONE: frozenset({M.CRM_DONE, M.DONE, M.DONE_UNTAGGED, M.REVIEW, M.RETRYING, M.RECEIVED, M.FORGOTTEN}),
    M.REVIEW: _REOPENED | {M.CRM_DONE},
    M.QUARANTINED: _REOPENED | {M.QUARANTINED},  # a worker given up on may quarantine it again
    M.IGNORED: _REOPENED,
    M.SKIPPED: _REOPENED,
    M.DONE: frozenset({M.FORGOTTEN}),
    M.DONE_UNTAGGED: frozenset({M.FORGOTTEN}),
    M.FORGOTTEN: frozenset({M.FORGOTTEN}),
}

# `reconcile --fix` sends a done mail whose CRM email is gone through the rules again. Not a
# move of the table above, which every writer checks: only a reopen that names the journal
# steps to redo may make it (gateway.ledger.outcomes.reopen).
REDO_MOVES: Mapping[MessageState, frozenset[MessageState]] = {
    M.DONE: frozenset({M.RECEIVED}),
    M.DONE_UNTAGGED: frozenset({M.RECEIVED}),
}

_SETTLED = frozenset({L.APPLIED, L.UNTAGGED, L.NONE})
LOCATION_MOVES: Mapping[LocationState, frozenset[LocationState]] = {
    # The primary copy is tagged by the outcome's transaction straight from new or waiting;
    # a copy given up on is marked untagged from wherever it was.
    L.NEW: frozenset({L.NEW, L.WAITING, L.TAGGING}) | _SETTLED,
    L.WAITING: frozenset({L.NEW, L.WAITING, L.TAGGING}) | _SETTLED,
    # The write-back ends in one of the settled states, or fails and the copy waits again.
    L.TAGGING: frozenset({L.NEW, L.WAITING, L.TAGGING}) | _SETTLED,
    # Settled copies wait again when a person resolves a review or a message is reopened;
    # a late outcome of a worker given up on may still record the tags it wrote.
    L.APPLIED: frozenset({L.NEW, L.WAITING}) | _SETTLED,
    L.UNTAGGED: frozenset({L.NEW, L.WAITING}) | _SETTLED,
    L.NONE: frozenset({L.NEW, L.WAITING}) | _SETTLED,
}


class IllegalTransition(Exception):
    """A state change the tables above do not allow: a bug in the caller, never retried.

    Not a `GatewayError`: the pipeline must not quarantine or retry a message over it."""

    def __init__(self, what: str, from_state: str, to_state: str, pk: int | None = None) -> None:
        self.what, self.from_state, self.to_state, self.pk = what, from_state, to_state, pk
        of = f" {pk}" if pk is not None else ""
        super().__init__(f"{what}{of}: no move from '{from_state}' to '{to_state}'")


def check_message_move(from_state: MessageState | str, to_state: MessageState | str, pk: int | None = None) -> MessageState:
    """The target state, if a message may move there from `from_state`; else IllegalTransition."""
    frm, to = MessageState(from_state), MessageState(to_state)
    if to not in MESSAGE_MOVES[frm]:
        raise IllegalTransition("message", frm, to, pk)
    return to


def check_location_move(from_state: LocationState | str, to_state: LocationState | str, pk: int | None = None) -> LocationState:
    """The target state, if a copy may move there from `from_state`; else IllegalTransition."""
    frm, to = LocationState(from_state), LocationState(to_state)
    if to not in LOCATION_MOVES[frm]:
        raise IllegalTransition("location", frm, to, pk)
    return to
