"""The Pipeline: its collaborators wired together, and the verbs the runtime and the admin
commands call.

One message travels parse → claim → evaluate → journal + CRM → tags → record (DESIGN.md
"Flow of one message"). The collaborators each hold one of those jobs: the runner drives the
steps over batches of work items; the CRM execution writes the journal and calls the
connector; tagging decides and writes back tags; failure retries or quarantines; decisions
are what a person decides about a message, done with the same execution and tagging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from gateway.config import Config
from gateway.config.context import Contexts
from gateway.config.rulesholder import RulesHolder
from gateway.crm.base import Connector, PartyRef
from gateway.ledger import Ledger, LocationRow
from gateway.ledger.locks import AddressLocks, KeyedLocks, NamedLock
from gateway.ledger.spool import Spool
from gateway.ledger.states import MessageState
from gateway.ledger.states import MessageState as M
from gateway.mailboxes.base import Writeback
from gateway.pipeline.budget import Stage
from gateway.pipeline.claim import Claims, Reader
from gateway.pipeline.decisions import Decisions
from gateway.pipeline.evaluation import Evaluation
from gateway.pipeline.execution import Execution
from gateway.pipeline.failure import Failure
from gateway.pipeline.hooks import Hooks
from gateway.pipeline.items import Outcomes
from gateway.pipeline.recording import Recording
from gateway.pipeline.runner import Runner
from gateway.pipeline.tagging import Tagging


class Pipeline:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        connector: Connector,
        rules: RulesHolder,
        spool: Spool,
        writebacks: Mapping[str, Writeback] | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.crm = connector
        self.rules = rules
        self.spool = spool
        self.hooks = Hooks()
        contexts = Contexts(config)
        message_locks = KeyedLocks()
        reader = Reader(config, self.hooks, spool, dict(writebacks or {}))
        execution = Execution(ledger, connector, contexts, AddressLocks(spool.root / "locks", ledger.engine), self.hooks)
        tagging = Tagging(config.tags, ledger, spool, dict(writebacks or {}), config.gateway_name)
        recording = Recording(ledger, spool, tagging)
        failure = Failure(config, ledger, execution, tagging)
        evaluation = Evaluation(config, ledger, connector, rules, contexts, reader, tagging, self.hooks)
        claims = Claims(ledger, reader, failure, recording, self.hooks)
        self._failure = failure
        self._decisions = Decisions(config, ledger, contexts, reader, execution, tagging, message_locks)
        self._runner = Runner(ledger, self.hooks, claims, evaluation, execution, tagging, recording, failure, message_locks)
        self._task_locks: dict[str, NamedLock] = {}
        self._task_locks_guard = threading.Lock()

    def task_lock(self, name: str) -> NamedLock:
        """The lock of a task only one may run at a time over this ledger (`reconcile --fix`):
        across threads, the processes of this machine and the gateways sharing a PostgreSQL ledger."""
        with self._task_locks_guard:
            if name not in self._task_locks:
                self._task_locks[name] = NamedLock(self.spool.root / "locks" / "tasks", name, self.ledger.engine)
            return self._task_locks[name]

    # Told which copies the work is on and at what stage (gateway.pipeline.budget): the budget's
    # watchdog reads it. It may raise `budget.Abandoned` to stop a worker given up on.
    @property
    def on_stage(self) -> Callable[[Sequence[int], Stage], None] | None:
        return self.hooks.on_stage

    @on_stage.setter
    def on_stage(self, value: Callable[[Sequence[int], Stage], None] | None) -> None:
        self.hooks.on_stage = value

    @property
    def crash_at(self) -> Callable[[str], None] | None:
        """Called at each journal step (fault injection for the crash tests)."""
        return self.hooks.crash_at

    @crash_at.setter
    def crash_at(self, value: Callable[[str], None] | None) -> None:
        self.hooks.crash_at = value

    def handle(self, location_pk: int, loc: LocationRow | None = None) -> str:
        """Do whatever this copy still needs; return the message's state afterwards.

        `loc`: the row the caller already holds (a fresh intake), saving a read."""
        outcome = self.handle_many([(location_pk, loc)])[location_pk]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def handle_many(self, items: Sequence[tuple[int, LocationRow | None]]) -> Outcomes:
        """`handle` for several copies at once: location → state, or the exception that copy
        met (the caller retries it; every step before it is in the journal)."""
        return self._runner.handle_many(items)

    def quarantine_location(self, location_pk: int, reason: str) -> str:
        """The budget watchdog (or the crash count) gave up on a copy: quarantine its message."""
        return self._failure.give_up(location_pk, reason)

    def reopen(self, message_pk: int, state: MessageState = M.RECEIVED, *, redo: Sequence[str] = ()) -> int:
        """Send a message through the current rules again; returns its primary location."""
        return self._decisions.reopen(message_pk, state, redo=redo)

    def resolve(self, message_pk: int, to: list[PartyRef] | None = None, create_kind: str | None = None) -> str:
        """Attach a message in review to the records a person picked (or creates), then tag it."""
        return self._decisions.resolve(message_pk, to, create_kind)

    def link(self, message_pk: int, ref: PartyRef) -> str:
        """Attach a handled message to one more record (idempotent); the CRM's email id."""
        return self._decisions.link(message_pk, ref)

    def file_found(self, location_pk: int, ref: PartyRef) -> tuple[int, str]:
        """File a copy a person handed in by hand on the record they picked, without the rules
        (review resolved at once); its message's id and the CRM's email id."""
        return self._decisions.file_found(location_pk, ref)
