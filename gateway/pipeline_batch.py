"""The batch path of `Pipeline.handle_many`: new messages whose ledger and CRM writes share
transactions (DESIGN.md, "Pipeline batches"). A mixin of `gateway.pipeline.Pipeline`: it uses
the one-message path's steps and falls back to that path wherever a batch cannot go on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gateway import addresses
from gateway.budget import Stage
from gateway.crm.base import PartyRef, attach_each
from gateway.engine.model import Plan
from gateway.engine.plan import evaluate
from gateway.errors import Permanent, Retryable
from gateway.ledger import Finish, LocationRow, MessageRow
from gateway.mailboxes.base import Applied, LedgerOnly, TagRequest, apply_each
from gateway.message import Message
from gateway.plan_steps import evaluated_note, steps_of, targets_of
from gateway.records import email_record, ref_to_json

if TYPE_CHECKING:
    from gateway.pipeline import Pipeline


log = logging.getLogger("gateway.pipeline")


class BatchPath:
    def _process_plain(self: Pipeline, plain: Sequence[tuple[LocationRow, MessageRow, Message, bytes]], started: float,
                       out: dict[int, str | Exception]) -> None:
        """New messages, each claimed by its copy here, with their ledger and CRM writes shared:
        the intents of the Plans with creates in one ledger transaction, the attaches in one
        CRM transaction (where the connector can), the outcomes in one ledger transaction.

        The journal protocol is the one-message path's, step for step, and that path takes
        over wherever a batch cannot go on: a message whose evaluation fails, and every
        message of an attach batch the CRM refuses (those with intents replay their journal,
        the others are evaluated and attached again: attach is idempotent).

        Outcomes are those of the messages one after the other: a mail whose rules looked up
        a person, domain or thread that a mail before it in the batch creates or attaches is
        evaluated again after that (`_Lookups`); the one-message path runs after the batch's
        CRM work."""
        def alone(loc: LocationRow, row: MessageRow, message: Message, raw: bytes, plan: Plan | None) -> None:
            try:
                after = self._process(loc, row, message, raw, evaluated=plan)
                self._log(loc, after, started)
                out[loc.id] = after.state
            except Exception as exc:
                out[loc.id] = exc

        def replay(i: _Item) -> None:
            """The journal has this Plan's intents: finish it the way a restart would."""
            try:
                if i.results:
                    self._keep_partial(i.row, i.results)
            except Exception as exc:
                out[i.loc.id] = exc
                return
            alone(i.loc, i.row, i.message, i.raw, None)

        later: list[tuple[LocationRow, MessageRow, Message, bytes]] = []
        solo: list[tuple[LocationRow, MessageRow, Message, bytes]] = []
        with self._message_locks.many([str(loc.message_pk) for loc, *_ in plain]):
            nothing: list[tuple[LocationRow, MessageRow, Plan]] = []
            work: list[_Item] = []
            attaching: set[str] = set()  # Message-IDs of this batch whose attach is still to come
            creating: set[str] = set()  # addresses and @domains the batch's Plans create records for
            for loc, row, message, raw in plain:
                if message.headers_only or (self.config.since and message.date.date() < self.config.since):
                    solo.append((loc, row, message, raw))  # the one-message path says why
                    continue
                looked = _Lookups(self.crm)
                self._stage((loc.id,), Stage.RULES)
                try:
                    plan: Plan | None = evaluate(message, self.contexts.for_ref(loc.ref, frozenset(loc.tags)),
                                                 self.rules.current, looked)
                except Exception:
                    plan = None  # the one-message path evaluates again, then retries or quarantines
                if looked.ids & attaching or looked.keys & creating:
                    # It looked up a person, domain or thread that a mail before it in this batch
                    # is about to create or attach: evaluated again once that is done. What
                    # depends on it waits too, so the order stays the one of the batch.
                    later.append((loc, row, message, raw))
                    attaching.add(message.message_id)
                    creating.update(looked.keys)
                    continue
                if plan is None:
                    solo.append((loc, row, message, raw))
                elif plan.outcome in ("ignored", "skipped"):
                    nothing.append((loc, row, plan))
                else:
                    work.append(_Item(loc, row, message, raw, plan, self._needs_intents(plan)))
                    attaching.add(message.message_id)
                    creating.update(_creates_for(plan))
            self._stage([i.loc.id for i in work], Stage.CRM)
            work = self._start_plans(work, alone, replay, out)
            if not self._attach_plain(work):  # the CRM refused the batch: each mail on its own finds out why
                for i in work:
                    if i.journaled:
                        replay(i)
                    else:
                        alone(i.loc, i.row, i.message, i.raw, i.plan)
                work = []
            outcomes: list[tuple[LocationRow, MessageRow, Finish, MessageRow]] = []
            for loc, row, plan in nothing:
                outcomes.append((loc, row, *self._nothing_to_do(loc, row, plan)))
            self._stage([i.loc.id for i in work], Stage.WRITEBACK)
            for i, applied in zip(work, self._tag_plain(work), strict=True):
                try:
                    if isinstance(applied, Exception):
                        raise applied
                    assert i.tags is not None  # set by _tag_plain for every copy it wrote back
                    outcomes.append((i.loc, i.row, *self._tagged(i.loc, i.row, i.plan, i.results, i.tags, applied)))
                except (Retryable, Permanent) as exc:
                    self._item_failed(i, exc, out, crm_complete=True)
            self._stage([loc.id for loc, *_ in outcomes], Stage.RECORD)
            self._record_plain(outcomes, started, out)
            for loc, row, message, raw in solo:  # after the batch's CRM work, as one after the other
                alone(loc, row, message, raw, None)
        if later:
            self._process_plain(later, started, out)

    def _start_plans(self: Pipeline, work: list[_Item], alone: Callable[..., None], replay: Callable[[_Item], None],
                     out: dict[int, str | Exception]) -> list[_Item]:
        """Journal the intents of the Plans that need them (one transaction), then run their
        creates; returns the messages that go on to the attach."""
        journaled = [i for i in work if i.journaled]
        if not journaled:
            return work
        plans = {id(i): i.plan.to_json() for i in journaled}
        try:
            stored = self.ledger.start_plan_many([(i.row.id, plans[id(i)], steps_of(i.plan), evaluated_note(i.plan))
                                                  for i in journaled])
            journals = {id(i): journal for i, journal in zip(journaled, stored, strict=True)}
        except Exception:  # nothing was stored (one transaction): each message on its own
            for i in journaled:
                alone(i.loc, i.row, i.message, i.raw, i.plan)
            return [i for i in work if not i.journaled]
        going_on: list[_Item] = []
        for i in work:
            if not i.journaled:
                going_on.append(i)
                continue
            journal = journals[id(i)]
            i.row = replace(i.row, state="processing", plan=plans[id(i)])
            if any(v is not None for v in journal.values()):  # results of an earlier run: adopt them
                replay(i)
                continue
            try:
                i.created = self._creates(i.plan, journal, True, i.results)
                going_on.append(i)
            except (Retryable, Permanent) as exc:
                self._item_failed(i, exc, out, crm_complete=False)
        return going_on

    def _item_failed(self: Pipeline, i: _Item, exc: Retryable | Permanent, out: dict[int, str | Exception], *,
                     crm_complete: bool) -> None:
        """A message of a batch failed at a CRM or tagging step: retry or quarantine it as the
        one-message path would; its state, or what went wrong recording it, goes to `out`."""
        try:
            self._failed(i.row, i.plan, i.results, exc, crm_complete=crm_complete, reached_crm_done=False)
            out[i.loc.id] = self.ledger.message(i.row.id).state
        except Exception as failure:
            out[i.loc.id] = failure

    def _attach_plain(self: Pipeline, work: Sequence[_Item]) -> bool:
        """Attach the batch's mails (one CRM transaction where the connector can); each one's
        journal result goes into its `results`. False when the CRM refused."""
        items, slots = [], []
        for i in work:
            targets = targets_of(i.plan, i.created)
            if i.plan.attach is not None and targets:
                items.append((targets, email_record(i.message, i.raw, i.plan.direction,
                                                    with_attachments=i.plan.attach.attachments,
                                                    owner=self.contexts.for_ref(i.loc.ref).crm_user)))
                slots.append(i)
        if not items:
            return True
        self._step("attach:intent")
        try:
            if self._hint_attach:  # every one of them is a first attempt: its intent was just journalled
                emails = [self.crm.attach(targets, record, first_attempt=True) for targets, record in items]
            else:
                emails = attach_each(self.crm, items)
        except (Retryable, Permanent) as exc:
            log.info("batch of %d attaches refused (%s); attaching one by one", len(items), exc)
            return False
        self._step("attach:called")
        for i, (targets, _), email in zip(slots, items, emails, strict=True):
            i.results["attach"] = {"email_id": email.id, "targets": [ref_to_json(t) for t in targets]}
        self._step("attach:result")
        return True

    def _tag_plain(self: Pipeline, work: Sequence[_Item]) -> list[Applied | Exception]:
        """Write back the tags of the batch's copies, several at once per source where its
        write-back can (IMAP: one STORE for many UIDs); each copy's result, or its failure."""
        self._step("crm_done")
        out: list[Applied | Exception] = [Retryable("not written back")] * len(work)
        by_source: dict[str, list[int]] = {}
        for n, i in enumerate(work):
            try:
                i.tags = self._tag_request(i.loc, i.row, i.plan)
                by_source.setdefault(i.loc.ref.source, []).append(n)
            except Exception as exc:
                out[n] = exc if isinstance(exc, (Retryable, Permanent)) else Retryable(f"{type(exc).__name__}: {exc}")
        for source, ns in by_source.items():
            writeback = self.writebacks.get(source, LedgerOnly())
            applied: Sequence[Applied | Exception]
            try:
                applied = apply_each(writeback, [work[n].tags for n in ns])
            except Exception as exc:  # the CRM work is done: whatever failed here, tagging is retried
                failure = exc if isinstance(exc, (Retryable, Permanent)) else Retryable(
                    f"write-back failed: {type(exc).__name__}: {exc}")
                if failure is not exc:
                    log.exception("write-back of %d copies failed", len(ns))
                applied = [failure] * len(ns)
            for n, a in zip(ns, applied, strict=True):
                out[n] = a
        return out

    def _record_plain(self: Pipeline, outcomes: Sequence[tuple[LocationRow, MessageRow, Finish, MessageRow]], started: float,
                      out: dict[int, str | Exception]) -> None:
        """The batch's outcomes in one ledger transaction (one by one if that fails), then tag
        the copies waiting for them."""
        if not outcomes:
            return
        try:
            waiting: list[list[int] | Exception] = list(self.ledger.finish_many([f for _, _, f, _ in outcomes]))
        except Exception:
            waiting = []
            for _, _, finish, _ in outcomes:
                try:
                    waiting.append(self.ledger.finish_many([finish])[0])
                except Exception as exc:  # the caller retries it: attach is idempotent, tags too
                    waiting.append(exc)
        for (loc, row, _, after), copies in zip(outcomes, waiting, strict=True):
            if isinstance(copies, Exception):
                out[loc.id] = copies
                continue
            try:
                self._recorded(loc, row, after, copies)
                self._log(loc, after, started)
                out[loc.id] = after.state
            except Exception as exc:
                out[loc.id] = exc


@dataclass
class _Item:
    """A new message of a batch on its way through `_process_plain`."""

    loc: LocationRow
    row: MessageRow
    message: Message
    raw: bytes
    plan: Plan
    journaled: bool  # its Plan's steps are journalled as intents before any CRM call
    created: dict[str, PartyRef] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    tags: TagRequest | None = None  # its primary copy's write-back


class _Lookups:
    """The CRM as the rules of one evaluation see it, noting what they look up (persons by
    address, accounts by domain, threads by Message-ID): a mail that looked up what a mail
    before it in its batch is about to create or attach is evaluated again after that."""

    def __init__(self, crm: Any) -> None:
        self._crm = crm
        self.keys: set[str] = set()  # address keys and @domains
        self.ids: set[str] = set()  # Message-IDs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._crm, name)

    def find(self, address: str, kinds: Sequence[Any]) -> list[PartyRef]:
        self.keys.add(addresses.key(address))
        return self._crm.find(address, kinds)

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        self.keys.add("@" + domain.strip().lstrip("@").lower())
        return self._crm.find_by_domain(domain)

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        self.ids.update(message_ids)
        return self._crm.thread_parents(message_ids)


def _creates_for(plan: Plan) -> set[str]:
    """The addresses (persons) and @domains (accounts) the Plan creates records for."""
    out: set[str] = set()
    for pc in plan.creates:
        if "@" in pc.address:
            out.add(addresses.key(pc.address))
        if pc.kind == "account":
            out.add("@" + (pc.address.rpartition("@")[2] or pc.address).strip().lower())
    return out
