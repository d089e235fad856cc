"""One message through the gateway: parse → claim → evaluate → journal + CRM → tags.

DESIGN.md "Flow of one message". The Plan is evaluated once and stored; a retry after a
crash replays the stored Plan against the journal, so a step that was done is adopted and
never done twice, and a record created before the crash is still counted as created.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import addresses
from gateway.budget import Stage
from gateway.config import Config
from gateway.context import Contexts
from gateway.crm.base import PARTY_KINDS, Connector, PartyRef
from gateway.engine.model import Plan
from gateway.engine.plan import evaluate
from gateway.errors import Permanent, Retryable, UnparseableMessage
from gateway.ledger import TERMINAL, Bind, Binding, Finish, Ledger, LocationRow, MessageRow
from gateway.ledger.locks import AddressLocks, KeyedLocks
from gateway.ledger.spool import Spool
from gateway.mailboxes.base import Applied, LedgerOnly, TagRequest, Writeback
from gateway.message import Message, parse
from gateway.pipeline_batch import BatchPath
from gateway.pipeline_person import PersonActions
from gateway.plan_steps import CRM_DONE, evaluated_note, steps_of, targets_of
from gateway.records import email_record, plan_from_json, ref_from_json, ref_to_json
from gateway.rulesholder import RulesHolder

log = logging.getLogger("gateway.pipeline")


class Pipeline(BatchPath, PersonActions):
    def __init__(self, config: Config, ledger: Ledger, connector: Connector, rules: RulesHolder,
                 spool: Spool, writebacks: Mapping[str, Writeback] | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.crm = connector
        self.rules = rules
        self.spool = spool
        self.writebacks = dict(writebacks or {})
        self.contexts = Contexts(config)
        self._address_locks = AddressLocks(spool.root / "locks", ledger.engine)
        self._message_locks = KeyedLocks()
        self.crash_at: Callable[[str], None] | None = _crash_hook()
        # Told which copies the work is on and at what stage (gateway.budget): the budget's
        # watchdog reads it. It may raise `budget.Abandoned` to stop a worker given up on.
        self.on_stage: Callable[[Sequence[int], Stage], None] | None = None
        self._slow_parse = _slow_parse_hook()
        self._hint_attach = bool(getattr(connector, "wants_first_attempt_hint", False))

    # ---- entry point --------------------------------------------------------------------

    def handle(self, location_pk: int, loc: LocationRow | None = None) -> str:
        """Do whatever this copy still needs; return the message's state afterwards.

        `loc`: the row the caller already holds (a fresh intake), saving a read."""
        outcome = self.handle_many([(location_pk, loc)])[location_pk]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def handle_many(self, items: Sequence[tuple[int, LocationRow | None]]) -> dict[int, str | Exception]:
        """`handle` for several copies at once: location → state, or the exception that copy
        met (the caller retries it; every step before it is in the journal).

        New copies are claimed in one ledger transaction. New messages whose Plans can share
        them go through one set of ledger and CRM transactions (`_process_plain`); every other
        copy takes the one-message path. A batch of one is the same code. At most
        BATCH_BYTES of mail are parsed and held at once: a batch of big mails goes in parts."""
        started = time.monotonic()
        out: dict[int, str | Exception] = {}
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
        for loc in locs:
            if loc.message_pk is not None:  # linked before: a retry, a replay, a copy's second visit
                try:
                    out[loc.id] = self._handle_bound(loc, None, None, None, started)
                except Exception as exc:
                    out[loc.id] = exc
        for part in _by_size([loc for loc in locs if loc.message_pk is None], BATCH_BYTES):
            self._handle_new(part, started, out)
        return out

    def _handle_new(self, fresh: Sequence[LocationRow], started: float, out: dict[int, str | Exception]) -> None:
        """New copies: parse and claim them together, then the CRM work of those they claimed."""
        bound: list[tuple[LocationRow, MessageRow | None, Message | None, bytes | None]] = []
        try:
            for loc, parsed, data, binding in self._bind_many(fresh, out):
                bound.append((replace(loc, message_pk=binding.message_pk), binding.row, parsed, data))
        except Exception as exc:
            out.update((loc.id, exc) for loc in fresh if loc.id not in out)
        plain = [(loc, row, message, raw) for loc, row, message, raw in bound
                 if row is not None and message is not None and row.primary_location == loc.id and row.state == "received"]
        if plain:
            self._process_plain(plain, started, out)  # type: ignore[arg-type]
        # Then the copies: a copy of a mail claimed in this batch is evaluated after its
        # primary's CRM work, and tagged at once, as one after the other would.
        for loc, row, message, raw in bound:
            if loc.id not in out:
                try:
                    out[loc.id] = self._handle_bound(loc, row, message, raw, started)
                except Exception as exc:
                    out[loc.id] = exc

    def _handle_bound(self, loc: LocationRow, row: MessageRow | None, message: Message | None, raw: bytes | None,
                      started: float) -> str:
        """One copy linked to its message: the primary does the CRM work, a copy waits for its tags."""
        assert loc.message_pk is not None
        with self._message_locks(str(loc.message_pk)):
            if row is None or row.primary_location != loc.id:
                row = self.ledger.message(loc.message_pk)  # a copy, or a message someone else may have moved on
            if row.primary_location != loc.id:
                self._stage((loc.id,), Stage.WRITEBACK)
                self._copy(loc, row, message)
                row = self.ledger.message(row.id)
            elif row.state in TERMINAL:
                self._finish_locations(row)
                row = self.ledger.message(row.id)
            elif row.state == "retrying" and row.next_attempt_at and row.next_attempt_at > datetime.now(UTC):
                return row.state
            else:
                row = self._process(loc, row, message, raw)
        self._log(loc, row, started)
        return row.state

    # ---- claiming -----------------------------------------------------------------------

    def _read(self, path: str | None) -> bytes:
        if not path:
            raise Permanent("the raw message is no longer in the spool")
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            raise Permanent(f"the raw message is no longer in the spool ({path})") from None

    def _parse(self, raw: bytes, arrival: datetime | None, declared_size: int | None = None) -> Message:
        if self._slow_parse is not None:
            self._slow_parse(raw)
        if declared_size is not None and declared_size > self.config.max_message_size:
            message = parse(raw, arrival=arrival, max_size=0)  # only the headers were fetched
            return replace(message, raw_size=declared_size)
        return parse(raw, arrival=arrival, max_size=self.config.max_message_size)

    def _bind_many(self, locs: Sequence[LocationRow], out: dict[int, str | Exception]
                   ) -> list[tuple[LocationRow, Message, bytes, Binding]]:
        """Parse new copies and link them to their message identities (insert = claim), in one
        ledger transaction. A copy nothing can parse is quarantined at once (`out` says so)."""
        parsed: list[tuple[LocationRow, Message, bytes]] = []
        for loc in locs:
            raw: bytes | None = None
            started = time.monotonic()
            self._stage((loc.id,), Stage.PARSE)
            try:
                raw = self._read(loc.spool_path)
                parsed.append((loc, self._parse(raw, loc.seen_at, loc.declared_size), raw))
            except (UnparseableMessage, Permanent) as exc:
                try:
                    self._quarantine_unparseable(loc, raw, exc, started)
                    out[loc.id] = "quarantined"
                except Exception as failure:
                    out[loc.id] = failure
        binds = []
        for loc, message, _ in parsed:
            keys = {a.key for a in (*message.from_, *message.sender, *message.to, *message.cc, *message.reply_to)}
            binds.append(Bind(loc.id, message.message_id, message.content_hash, subject=message.subject,
                              from_address=message.from_[0].address if message.from_ else "", size=message.raw_size,
                              addresses=keys, spool_path=loc.spool_path, state="received", label=loc.ref.label()))
        self._stage([loc.id for loc, _, _ in parsed], Stage.CLAIM)
        try:
            bindings: list[Binding | Exception] = list(self.ledger.bind_many(binds)) if binds else []
        except Exception:
            if len(binds) < 2:
                raise
            bindings = []  # one claim the ledger refuses must not hold back the others
            for b in binds:
                try:
                    bindings.append(self.ledger.bind_many([b])[0])
                except Exception as exc:
                    bindings.append(exc)
        bound = []
        for (loc, message, raw), binding in zip(parsed, bindings, strict=True):
            if isinstance(binding, Exception):
                out[loc.id] = binding
            else:
                bound.append((loc, message, raw, binding))
        return bound

    def _quarantine_unparseable(self, loc: LocationRow, raw: bytes | None, exc: Exception,
                                started: float | None = None) -> None:
        started = time.monotonic() if started is None else started
        raw_hash = hashlib.sha256(raw).hexdigest() if raw is not None else hashlib.sha256(loc.ref.label().encode()).hexdigest()
        b = self.ledger.bind(loc.id, message_id=f"<unparseable-{raw_hash[:32]}@crm-gateway>", content_hash=raw_hash,
                             spool_path=loc.spool_path, state="processing", label=loc.ref.label())
        self._quarantine(self.ledger.message(b.message_pk), f"unparseable: {exc}", None)
        self._log(loc, self.ledger.message(b.message_pk), started)  # one `event=message` line, as for any other

    def quarantine_location(self, location_pk: int, reason: str) -> str:
        """The budget watchdog (or the crash count) gave up on a copy: quarantine its message
        with the reason, whatever stage it was at, with a guarded update (a worker that
        finishes late cannot undo it: `finish_many` leaves a quarantined message alone).
        Returns the message's state afterwards."""
        loc = self.ledger.location(location_pk)
        if loc.message_pk is None:  # stuck before its identity was known: parsing
            digest = hashlib.sha256(f"{reason}\0{loc.ref.label()}".encode()).hexdigest()
            b = self.ledger.bind(loc.id, message_id=f"<stopped-{digest[:32]}@crm-gateway>", content_hash=digest,
                                 spool_path=loc.spool_path, state="processing", label=loc.ref.label())
            loc = replace(loc, message_pk=b.message_pk)
        row = self.ledger.message(loc.message_pk)  # type: ignore[arg-type]
        if row.primary_location != loc.id or row.state in TERMINAL:  # a copy's own tagging: that copy only
            self.ledger.take_location(loc.id, ("new", "waiting", "tagging"), "untagged")
            self.ledger.add_event(row.id, "note", f"{loc.ref.label()}: {reason}")
            return self.ledger.message(row.id).state
        if row.state == "crm_done":  # nothing after the CRM work ever quarantines a message
            self.ledger.schedule_retry(row.id, reason, self.config.retry.base_delay)
            return "retrying"
        if self.ledger.set_state(row.id, "quarantined", reason, only_from=("received", "processing", "retrying")):
            try:
                self._finish_locations(self.ledger.message(row.id))
            except Exception as exc:  # the tags wait for `quarantine retry`; the state is what counts
                log.warning("could not tag quarantined message %s yet: %s", row.id, exc)
        return self.ledger.message(row.id).state

    # ---- the primary copy: CRM work -----------------------------------------------------

    def _process(self, loc: LocationRow, row: MessageRow, message: Message | None, raw: bytes | None,
                 evaluated: Plan | None = None) -> MessageRow:
        """The CRM work of a message, done by its primary copy; returns the message's row after it.

        `evaluated`: the Plan the batch path evaluated already for this fresh message."""
        reached_crm_done = row.state == "crm_done"
        plan: Plan | None = None
        results: dict[str, Any] = {}  # filled step by step by _execute, so a failure keeps what was done
        crm_complete = False
        try:
            if raw is None:
                raw = self._read(row.spool_path or loc.spool_path)
            if message is None:
                self._stage((loc.id,), Stage.PARSE)
                message = self._parse(raw, loc.seen_at, loc.declared_size)
            if message.headers_only:
                raise Permanent(f"over max_message_size ({message.raw_size} bytes > {self.config.max_message_size}): "
                                "only headers, size and hash were kept")
            if self.config.since and message.date.date() < self.config.since:
                self.ledger.set_state(row.id, "ignored", f"dated {message.date.date()}, before `since` {self.config.since}")
                self._finish_locations(self.ledger.message(row.id))
                return self.ledger.message(row.id)
            journal = self.ledger.journal(row.id) if row.plan and row.state in ("processing", "crm_done", "retrying") else {}
            if journal:
                plan = plan_from_json(row.plan)  # type: ignore[arg-type]  # replay: the same Plan, adopted step by step
                fresh = False
                # The CRM work finished before (the tagging failed): it must never be redone or
                # quarantined, whatever state a retry left the row in.
                reached_crm_done = reached_crm_done or journal.get(CRM_DONE) is not None
            else:
                self._stage((loc.id,), Stage.RULES)
                plan = evaluated or evaluate(message, self.contexts.for_ref(loc.ref, frozenset(loc.tags)),
                                             self.rules.current, self.crm)
                if plan.outcome in ("ignored", "skipped"):  # nothing to write anywhere, no tags
                    finish, after = self._nothing_to_do(loc, row, plan)
                    self._recorded(loc, row, after, self.ledger.finish_many([finish])[0])
                    return after
                steps = steps_of(plan)
                if self._needs_intents(plan):
                    # Intents first: a record created before a crash must be adopted as created.
                    # A message sent through the rules again keeps the results of its earlier run.
                    journal = self.ledger.start_plan(row.id, plan.to_json(), steps, evaluated_note(plan))
                else:
                    # The only CRM step is an idempotent attach: a crash before the end just
                    # evaluates again, so the Plan is stored with the final state (one commit less).
                    journal = {step: None for step in steps}
                fresh = True
            self._stage((loc.id,), Stage.CRM)
            if not reached_crm_done:
                self._execute(row.id, plan, message, raw, self.contexts.for_ref(loc.ref).crm_user, journal, fresh, results)
                self._step("crm_done")
            crm_complete = True
            self._stage((loc.id,), Stage.WRITEBACK)
            return self._complete(loc, row, plan, results)
        except (Retryable, Permanent) as exc:
            self._failed(row, plan, results, exc, crm_complete=crm_complete, reached_crm_done=reached_crm_done)
        return self.ledger.message(row.id)

    def _failed(self, row: MessageRow, plan: Plan | None, results: dict[str, Any], exc: Retryable | Permanent, *,
                crm_complete: bool, reached_crm_done: bool) -> None:
        """Retry or quarantine after a failure; `results`: the CRM steps done before it."""
        if isinstance(exc, Retryable):
            if crm_complete and not reached_crm_done:  # the CRM work is done: never quarantine it now
                self._crm_done(row, plan, results)
                reached_crm_done = True
            elif results:
                self._keep_partial(row, results)
            self._retry(row, str(exc), exc.retry_after, never_quarantine=reached_crm_done, plan=plan)
            return
        plan = getattr(exc, "plan", None) or plan  # a rule that cannot apply carries its trace and on_error
        if crm_complete or reached_crm_done:  # nothing after crm_done ever quarantines a message
            if not reached_crm_done:
                self._crm_done(row, plan, results)
            self._retry(row, str(exc), None, never_quarantine=True, plan=plan)
        else:
            if results:
                self._keep_partial(row, results)
            self._quarantine(self.ledger.message(row.id), str(exc), plan)

    def _nothing_to_do(self, loc: LocationRow, row: MessageRow, plan: Plan) -> tuple[Finish, MessageRow]:
        """An ignored or skipped message: its outcome, to record, and its row after it."""
        plan_json = plan.to_json()
        finish = Finish(row.id, state=plan.outcome, reason=plan.reason, plan=plan_json, location_pk=loc.id,
                        tags=loc.tags, location_state="none")
        return finish, replace(row, state=plan.outcome, reason=plan.reason, plan=plan_json)

    def _keep_partial(self, row: MessageRow, results: dict[str, Any]) -> None:
        """Some steps reached the CRM before a failure: journal them (a retry adopts them, and
        `forget` knows which records the gateway made)."""
        for step, value in results.items():
            self.ledger.intent(row.id, step)
            self.ledger.result(row.id, step, value)

    def _needs_intents(self, plan: Plan) -> bool:
        """Whether the Plan's steps are journalled before any CRM call: creates must be (a record
        made before a crash is adopted, not made twice); an attach only when the connector
        wants to know it is a first attempt."""
        return bool(plan.creates) or (plan.attach is not None and self._hint_attach)

    def _crm_done(self, row: MessageRow, plan: Plan | None, results: dict[str, Any]) -> None:
        """The write-back failed after the CRM work: record that work, and a CRM_DONE mark that
        no later state change can hide, so a retry only tags and never quarantines."""
        new = plan is not None and row.plan is None and not self._needs_intents(plan)
        self.ledger.finish(row.id, state="crm_done", results=results, plan=plan.to_json() if new and plan else None,
                           events_=[("note", "CRM work committed; tagging failed")], results_are_new=new,
                           marks={CRM_DONE: True})

    def _complete(self, loc: LocationRow, row: MessageRow, plan: Plan, results: dict[str, Any]) -> MessageRow:
        """Tag the primary copy, then record results, final state and tags in one transaction."""
        finish, after = self._tag(loc, row, plan, results)
        self._recorded(loc, row, after, self.ledger.finish_many([finish])[0])
        return after

    def _tag(self, loc: LocationRow, row: MessageRow, plan: Plan, results: dict[str, Any]) -> tuple[Finish, MessageRow]:
        """Write back the primary copy's tags; return the outcome to record and the row after it."""
        request = self._tag_request(loc, row, plan)
        applied = self.writebacks.get(loc.ref.source, LedgerOnly()).apply(
            request.ref, request.current, request.add, request.remove, request.move, request.message_id)
        return self._tagged(loc, row, plan, results, request, applied)

    def _tag_request(self, loc: LocationRow, row: MessageRow, plan: Plan) -> TagRequest:
        """The primary copy's tags by the Plan's outcome (a review or error tag from an earlier
        outcome goes)."""
        if plan.outcome == "review":
            return TagRequest(loc.ref, frozenset(loc.tags), frozenset(self.config.tags.review), frozenset(), None,
                              row.message_id)
        stale = [t for t in (*self.config.tags.review, *self.config.tags.error) if t in loc.tags]
        remove = [*plan.tags_remove, *(t for t in stale if t not in plan.tags_add)]
        return TagRequest(loc.ref, frozenset(loc.tags), frozenset(plan.tags_add), frozenset(remove), plan.move,
                          row.message_id)

    def _tagged(self, loc: LocationRow, row: MessageRow, plan: Plan, results: dict[str, Any], request: TagRequest,
                applied: Applied) -> tuple[Finish, MessageRow]:
        """The outcome to record once the write-back is done, and the row after it."""
        review = plan.outcome == "review"
        add, remove, move = sorted(request.add), sorted(request.remove), request.move
        state = "review" if review else ("done" if applied.ref is not None else "done_untagged")
        reason = (plan.review.reason if plan.review else plan.reason) if review else ""
        stored_plan = row.plan is not None or self._needs_intents(plan)
        events_ = [] if stored_plan else [("processing", evaluated_note(plan))]
        events_ += [("crm_done", "CRM work committed")] if results else []
        if applied.ref is None:
            events_.append(("done_untagged", f"{loc.ref.label()} is gone: {applied.note}"))
        elif add or remove or move:
            events_.append(("tagged", f"{applied.ref.label()}: +{add} -{remove}" + (f" moved to {move}" if move else "")))
        self._step("tagged")
        # The rule tags are stored as this copy's planned tags too: a review resolved later applies them.
        finish = Finish(
            row.id, state=state, reason=reason, plan=None if stored_plan else plan.to_json(), results=results,
            location_pk=loc.id,
            tags=sorted(applied.tags) if applied.ref is not None else loc.tags,
            location_state="applied" if applied.ref is not None else "untagged",
            planned=(plan.tags_add, plan.tags_remove, plan.move),
            moved_to=applied.ref if applied.ref is not None and applied.ref != loc.ref else None, events_=tuple(events_),
            results_are_new=not stored_plan)
        return finish, replace(row, state=state, reason=reason, plan={**(row.plan or {}), "touched": plan.touched})

    def _recorded(self, loc: LocationRow, row: MessageRow, after: MessageRow, waiting: list[int]) -> None:
        """After the outcome is in the ledger: tag the copies that wait for it, drop the spool file."""
        if waiting:
            self._finish_locations(self.ledger.message(row.id))
        if after.state == "done":
            self.spool.discard(loc.spool_path)
            if row.spool_path != loc.spool_path:
                self.spool.discard(row.spool_path)

    def _stage(self, pks: Sequence[int], stage: Stage) -> None:
        if self.on_stage is not None:
            self.on_stage(pks, stage)

    def _step(self, name: str) -> None:
        if self.crash_at is not None:
            self.crash_at(name)

    def _execute(self, message_pk: int, plan: Plan, message: Message, raw: bytes, crm_user: str,
                 journal: dict[str, Any], fresh: bool, results: dict[str, Any]) -> dict[str, Any]:
        """Run the Plan's CRM steps; return each step's result for the journal.

        Every step's intent is already in the journal. On a replay (`fresh` False) a step with
        an intent and no result may have reached the CRM before a crash: look the record up and
        adopt it as this step's result, so it is neither made twice nor counted as found."""
        created = self._creates(plan, journal, fresh, results)
        if plan.attach is not None and journal.get("attach") is None:
            targets = targets_of(plan, created)
            if targets:
                self._step("attach:intent")
                record = email_record(message, raw, plan.direction, with_attachments=plan.attach.attachments,
                                      owner=crm_user)
                # idempotent: a replay completes, never doubles. A fresh Plan's attach intent was
                # written before any call, so on a fresh evaluation nothing can be stored yet.
                if self._hint_attach:
                    email = self.crm.attach(targets, record, first_attempt=fresh)
                else:
                    email = self.crm.attach(targets, record)
                self._step("attach:called")
                results["attach"] = {"email_id": email.id, "targets": [ref_to_json(t) for t in targets]}
                self._step("attach:result")
        return results

    def _creates(self, plan: Plan, journal: dict[str, Any], fresh: bool, results: dict[str, Any]) -> dict[str, PartyRef]:
        """The Plan's create steps (see `_execute`): each step's record, made or adopted."""
        created: dict[str, PartyRef] = {}
        for pc in plan.creates:
            if journal.get(pc.key) is not None:
                created[pc.key] = ref_from_json(journal[pc.key])
                continue
            data = pc.data
            if pc.account is not None:
                data = replace(data, account=pc.account.ref or created.get(pc.account.create_key or ""))
            with self._address_locks(addresses.key(pc.address)):
                # Another worker may have made this person meanwhile (or we did, before a crash).
                existing = self._lookup(pc.kind, pc.address)
                self._step(f"{pc.key}:intent")
                if existing is not None:
                    ref, was_ours = existing, not fresh
                else:
                    ref, was_ours = self.crm.create(pc.kind, data), True
                    self._step(f"{pc.key}:called")
            created[pc.key] = ref
            results[pc.key] = ref_to_json(ref, created=was_ours)
            self._step(f"{pc.key}:result")
        return created

    def _lookup(self, kind: str, address: str) -> PartyRef | None:
        """The record this address already has. Any kind counts: a worker handling the same new
        sender from another folder may have made a lead where this Plan makes a contact, and
        done one after the other the second mail would have found the first record."""
        if kind == "account":
            found = self.crm.find_by_domain(address.rpartition("@")[2] or address)
        else:
            found = self.crm.find(address, [kind, *(k for k in PARTY_KINDS if k != kind)])  # type: ignore[list-item]
        return found[0] if found else None

    # ---- copies and write-back ----------------------------------------------------------

    def _copy(self, loc: LocationRow, row: MessageRow, message: Message | None) -> None:
        """Another copy of a known mail: attach nothing, only give it its own tags."""
        if loc.state == "new":
            add, remove, move = [], [], None
            try:
                if message is None:
                    message = self._parse(self._read(loc.spool_path), loc.seen_at, loc.declared_size)
                plan = evaluate(message, self.contexts.for_ref(loc.ref, frozenset(loc.tags)), self.rules.current, self.crm)
                if plan.outcome not in ("ignored", "skipped"):
                    add, remove, move = plan.tags_add, plan.tags_remove, plan.move
            except (Retryable, Permanent) as exc:
                first = row.plan or {}  # the CRM is away: the first copy's tags will do
                add, remove, move = first.get("tags_add", []), first.get("tags_remove", []), first.get("move")
                log.info("copy evaluated without the CRM (%s); using the first copy's tags", exc)
            self.ledger.plan_location(loc.id, add, remove, move, state="waiting")
        row = self.ledger.message(row.id)  # set waiting first, then look: one of the two workers tags it
        if row.state in TERMINAL:
            self._finish_locations(row)

    def _finish_locations(self, row: MessageRow, final_state: str | None = None) -> None:
        """Write back the tags of every copy waiting for them, by the message's outcome."""
        review = tuple(self.config.tags.review)
        untagged = False
        for loc in self.ledger.locations_of(row.id):
            if loc.state not in ("waiting", "new") or (loc.state == "new" and row.state not in ("quarantined", "ignored", "skipped")):
                continue
            if not self.ledger.take_location(loc.id, [loc.state], "tagging"):
                continue
            state = final_state or row.state
            if state in ("ignored", "skipped"):
                self.ledger.location_tagged(loc.id, loc.tags, "none")
                continue
            if state == "quarantined":
                on_error = (row.plan or {}).get("on_error") or {}
                add, remove, move = on_error.get("tags", list(self.config.tags.error)), on_error.get("untags", []), on_error.get("move")
            elif state == "review":
                add, remove, move = list(review), [], None
            else:  # done: the rule's tags; a review or error tag from an earlier outcome goes
                stale = [t for t in (*review, *self.config.tags.error) if t in loc.tags and t not in loc.tags_add]
                add, remove, move = list(loc.tags_add), [*loc.tags_remove, *stale], loc.move_to
            try:
                applied = self.writebacks.get(loc.ref.source, LedgerOnly()).apply(
                    loc.ref, frozenset(loc.tags), frozenset(add), frozenset(remove), move, row.message_id)
            except BaseException:  # any failure: the copy waits again rather than stay 'tagging'
                self.ledger.take_location(loc.id, ["tagging"], loc.state)
                raise
            if applied.ref is None:
                untagged = True
                self.ledger.location_tagged(loc.id, loc.tags, "untagged")
                self.ledger.add_event(row.id, "done_untagged", f"{loc.ref.label()} is gone: {applied.note}")
            else:
                self.ledger.location_tagged(loc.id, sorted(applied.tags), "applied",
                                            applied.ref if applied.ref != loc.ref else None)
                if add or remove or move:
                    self.ledger.add_event(row.id, "tagged", f"{applied.ref.label()}: +{sorted(add)} -{sorted(remove)}"
                                          + (f" moved to {move}" if move else ""))
        if final_state == "done":
            self.ledger.set_state(row.id, "done_untagged" if untagged else "done", "", only_from=["crm_done", "processing"])
            # A copy may have started waiting after the pass above and seen no final state yet:
            # now that the state is final, one more pass tags it (the guard makes it once).
            self._finish_locations(self.ledger.message(row.id))
            if not untagged:
                for loc in self.ledger.locations_of(row.id):
                    self.spool.discard(loc.spool_path)

    # ---- failure ------------------------------------------------------------------------

    def _retry(self, row: MessageRow, reason: str, retry_after: float | None, *, never_quarantine: bool,
               plan: Plan | None) -> str:
        r = self.config.retry
        attempts = self.ledger.message(row.id).attempts + 1
        if attempts >= r.max_attempts and not never_quarantine:
            self._quarantine(self.ledger.message(row.id), f"gave up after {attempts} attempts: {reason}", plan)
            return "quarantined"
        delay = retry_after if retry_after is not None else min(r.max_delay, r.base_delay * 2 ** (attempts - 1))
        delay *= random.uniform(0.8, 1.2) if retry_after is None else 1.0
        self.ledger.schedule_retry(row.id, reason, delay)
        return "retrying"

    def _quarantine(self, row: MessageRow, reason: str, plan: Plan | None) -> None:
        stored: dict[str, Any] = dict(row.plan or {})
        if plan is not None:
            stored = plan.to_json()
        self.ledger.set_state(row.id, "quarantined", reason, plan=stored or None)
        try:
            self._finish_locations(self.ledger.message(row.id))
        except Retryable as exc:
            log.warning("could not tag quarantined message %s yet: %s", row.id, exc)

    # ---- log ----------------------------------------------------------------------------

    def _log(self, loc: LocationRow, row: MessageRow, started: float) -> None:
        plan = row.plan or {}
        # A message that failed for good needs a person: it must show when filtering on warnings.
        log.log(logging.WARNING if row.state == "quarantined" else logging.INFO, "message", extra={"fields": {
            "id": row.id, "result": row.state, "source": loc.ref.source, "folder": loc.ref.folder,
            "message_id": row.message_id, "from": row.from_address,
            "rules": ",".join(plan.get("touched", [])), "reason": row.reason[:200],
            "ms": round((time.monotonic() - started) * 1000, 1)}})




# Raw bytes a batch parses and holds at once (the parsed form needs about as much again): a
# batch of big mails is handled in parts, one mail alone when it is bigger than this.
BATCH_BYTES = 32 * 1024 * 1024


def _by_size(locs: Sequence[LocationRow], budget: int) -> list[list[LocationRow]]:
    """Consecutive parts of `locs` whose spooled files add up to at most `budget` bytes each."""
    parts: list[list[LocationRow]] = []
    size = 0
    for loc in locs:
        try:
            n = os.path.getsize(loc.spool_path) if loc.spool_path else 0
        except OSError:
            n = 0  # gone: the parse step says so
        if not parts or (parts[-1] and size + n > budget):
            parts.append([])
            size = 0
        parts[-1].append(loc)
        size += n
    return parts


def _slow_parse_hook() -> Callable[[bytes], None] | None:
    """Test hook for the message budget: `CRM_GATEWAY_TEST_SLOW_PARSE=MARKER:SECONDS` makes
    parsing a mail whose raw bytes contain MARKER take SECONDS longer, as a parser stuck on a
    hostile mail would; `MARKER:crash` makes the process die there like `kill -9`, as a parser
    crashing the interpreter would. Read from the environment only; only the tests set it."""
    wanted = os.environ.get("CRM_GATEWAY_TEST_SLOW_PARSE")
    if not wanted:
        return None
    marker, _, seconds = wanted.rpartition(":")
    needle = marker.encode()

    def slow(raw: bytes) -> None:
        if needle in raw:
            if seconds == "crash":
                logging.shutdown()
                os._exit(137)
            logging.getLogger("gateway.pipeline").warning("test hook: parsing this mail takes %s s", seconds)
            time.sleep(float(seconds))

    return slow


def _crash_hook() -> Callable[[str], None] | None:
    """Fault injection for the crash tests: `CRM_GATEWAY_CRASH_AT=attach:called` makes the
    process die like `kill -9` when it reaches that journal step (a prefix matches too)."""
    import os

    wanted = os.environ.get("CRM_GATEWAY_CRASH_AT")
    if not wanted:
        return None
    once = os.environ.get("CRM_GATEWAY_CRASH_ONCE")  # a marker file: crash only the first time

    def crash(step: str) -> None:
        if step.startswith(wanted) or step.endswith(wanted):
            if once:
                try:
                    os.close(os.open(once, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    return
            logging.shutdown()
            os._exit(137)

    return crash
