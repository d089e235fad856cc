"""The values that travel through the pipeline's steps, one per copy or message.

A copy is `Claimed` once it is linked to its message (by this run's claim or an earlier one).
The message's primary copy becomes `Work`: the Plan and how far its CRM work got. Where the
steps start depends only on these values: a fresh Plan runs every step, a replay (a journal
already filled by a run that died) adopts what the journal holds, a message whose CRM work
was done only waits for its tags. A batch of one, a retry, a crash replay, a new mail of a
batch and a person's review decision go through the same steps; a decision's steps are named
and journalled its own way (`Steps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.crm.base import PartyRef
from gateway.engine.model import Plan
from gateway.ledger import Finish, LocationRow, MessageRow
from gateway.mailboxes.base import Applied, TagRequest
from gateway.message.parsing import Message

# What `Pipeline.handle_many` answers per copy: the message's state, or what went wrong
# (the caller retries that copy; every step before the failure is in the journal).
Outcomes = dict[int, "str | Exception"]


@dataclass(frozen=True)
class Claimed:
    """A copy linked to its message, with what this run already read of it."""

    loc: LocationRow
    row: MessageRow | None  # None: not read yet (it is read under the message's lock)
    message: Message | None = None  # parsed already (a fresh claim)
    raw: bytes | None = None  # the bytes `message` was parsed from


@dataclass(frozen=True)
class Looked:
    """What the rules looked up while evaluating: address keys and @domains, and Message-IDs
    of threads. A mail that looked up what a mail before it in its batch creates or attaches
    is evaluated again after that, as one after the other would."""

    keys: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Steps:
    """How a Work's CRM steps are named in the journal, and when each is journalled.

    The rules' steps (`RULES`) carry their Plan's keys; their intents are stored with the Plan
    before any call and their results with the outcome, one ledger transaction each for a
    batch. A person's decision (`DECISION`) names its steps `review:<key>`, as the ledgers in
    the field hold them, and journals each as it goes: the intent just before its call (under
    the address lock, for a create), the result just after. Its creates make the record the
    person asked for even where the address has others; only a create whose intent an earlier,
    interrupted run left behind is looked up in the CRM and adopted."""

    prefix: str = ""
    as_they_go: bool = False

    def key(self, step: str) -> str:
        return self.prefix + step


RULES = Steps()
DECISION = Steps("review:", as_they_go=True)


@dataclass(frozen=True)
class Work:
    """A message whose primary copy does its CRM work in this run."""

    loc: LocationRow
    row: MessageRow
    message: Message
    raw: bytes
    plan: Plan
    fresh: bool  # evaluated in this run; False: the Plan is replayed from the journal
    journal: Mapping[str, Any] = field(default_factory=dict)  # step → earlier result (None: an intent only)
    crm_done: bool = False  # an earlier run finished the CRM work: only the tags are left
    looked: Looked = Looked()
    steps: Steps = RULES
    created: Mapping[str, PartyRef] = field(default_factory=dict)  # create key → the record made or adopted
    # This run's step results, filled by the CRM execution step by step, so that a failure
    # halfway keeps (and journals) what reached the CRM. The only mutable part of a Work.
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tagged:
    """A primary copy written back: its Work, what was asked and where the copy is now."""

    work: Work
    request: TagRequest
    applied: Applied


@dataclass(frozen=True)
class Outcome:
    """A message's outcome, to record in the ledger: the `Finish` and the row after it."""

    loc: LocationRow
    row: MessageRow  # before
    finish: Finish
    after: MessageRow
    rules: tuple[str, ...] = ()  # the rules that touched it, for its log line
