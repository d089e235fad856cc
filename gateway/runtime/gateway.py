"""The running gateway: its parts (gateway/runtime/parts.py), its sources, and the runtime
around them — intake, workers (threads or processes), the budget's watchdog, the scheduler
of retries and sweeps, rule watching, the status page and the status document.

    with Gateway(config) as gw:
        gw.run(stop)          # until `stop` is set
        gw.run_once()         # what is there now, then return
        gw.handle(pk)         # one copy, now, in this process
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from gateway.config import Config
from gateway.config.rulesholder import RulesHolder
from gateway.crm.base import Connector
from gateway.errors import ConfigError
from gateway.ledger import Ledger
from gateway.ledger.spool import Spool
from gateway.pipeline.budget import Watch
from gateway.runtime import parts, status, tasks
from gateway.runtime.handler import BatchHandler
from gateway.runtime.intake import Intake
from gateway.runtime.leases import LeaseKeeper, mailboxes_of
from gateway.runtime.pimsync import PimSyncTask, book_leases
from gateway.runtime.scheduler import Scheduler
from gateway.runtime.threads import ThreadWorkers
from gateway.runtime.watchdog import Watchdog, Workers

log = logging.getLogger("gateway.service")


class Gateway:
    def __init__(self, config: Config, *, connector: Connector | None = None, rules: RulesHolder | None = None) -> None:
        self.config = config
        self._own_connector = connector is not None  # a connector object given by the caller (tests, embedding)

        def with_sources(ledger: Ledger, spool: Spool, rules: RulesHolder) -> parts.Made:
            # The intake comes with the ledger and spool, before the sources that hand copies to it.
            self.intake = Intake(config, ledger, spool)
            return parts.mailboxes(config, self.intake, rules)

        self.parts, self.sources = parts.build(config, with_sources, connector=connector, rules=rules)
        self.ledger, self.crm, self.rules = self.parts.ledger, self.parts.crm, self.parts.rules
        self.spool, self.writebacks, self.pipeline = self.parts.spool, self.parts.writebacks, self.parts.pipeline
        self.queue = self.intake.queue
        self.watch = Watch()
        self.watchdog = Watchdog(config.message_budget, self.watch, self.intake, self.ledger, self.pipeline)
        self.leases = LeaseKeeper(config, self.ledger, self.sources, also=book_leases(config))
        # the contact sync with the users' address books, when some are configured
        self.pimsync = PimSyncTask(config, self.leases.holds) if config.pimsync.addressbooks else None
        self.scheduler = Scheduler(
            self.ledger, self.intake, self.watchdog, copy_delay=config.retry.base_delay, owns=self.leases.owns_work
        )
        self.handler = BatchHandler(
            config, self.ledger, self.pipeline, fresh=self.intake.take_fresh, copies_later=self.scheduler.copies_later
        )
        self._threads = ThreadWorkers(self.intake, self.handler.handle_many, self.watch, count=config.workers, batch=config.batch)
        self.pipeline.on_stage = self._threads.on_stage
        self._workers: Workers | None = None
        self.processes = 1  # worker processes in use, once started (1: threads)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.parts.close()

    # ---- one copy now ---------------------------------------------------------------------

    def handle(self, pk: int) -> str:
        """Handle one copy now, in this process (`process`, `quarantine retry`, `reprocess`)."""
        return self.handler.handle(pk)

    def handle_many(self, pks: list[int]) -> dict[int, str]:
        """Handle these copies now as one batch, in this process; each one's state."""
        return self.handler.handle_many(pks)

    # ---- workers --------------------------------------------------------------------------

    def start_workers(self) -> None:
        """Worker threads, or worker processes with `processes` > 1, and their watchdog."""
        self.intake.stopping.clear()
        workers: Workers = self._threads
        processes = self.config.worker_processes()
        if processes > 1 and self.config.processes == "auto" and (self.config.path is None or self._own_connector):
            processes = 1  # worker processes read the config file and make their own connector
        self.processes = processes
        if processes > 1:
            from gateway.runtime.processes import ProcessPool

            if self.config.path is None:
                raise ConfigError("processes > 1 needs a config file the worker processes can read")
            pool = ProcessPool(
                self.config.path,
                processes,
                on_done=self.intake.done,
                on_lost=self.watchdog.lost,
                batch=self.config.batch,
                log_level=logging.getLevelName(logging.getLogger().level),
                watch=self.watch,
            )
            self.intake.sink = pool
            workers = pool
        workers.start()
        self._workers = workers
        self.watchdog.start(workers)

    def stop_workers(self) -> None:
        """Each worker finishes the batch in hand; the backlog stays open in the ledger."""
        self.intake.stopping.set()
        if self._workers is not None:
            self._workers.stop()
            self._workers = None
        self.intake.sink = self.intake.queue
        self.watchdog.stop()
        self.intake.forget_inflight()

    # ---- run ------------------------------------------------------------------------------

    def run_once(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Process what is there now in every source (and what a crash left open), then return."""
        done, total = 0, 0

        def count(_pk: int, _state: str) -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, max(total, done))

        self.intake.on_processed = count
        self._join()
        self.start_workers()
        try:
            held = [s for s in self.sources if self._holds_any(s)]
            total = sum(getattr(s, "pending_count", lambda: 0)() for s in held)
            total += self.scheduler.recover()
            if progress:
                progress(0, total)
            for source in held:
                source.scan_once()
            self.scheduler.drain_backlog()
        finally:
            self.stop_workers()
            self.write_status(running=False)
            self.leases.leave()
        return status.summary(self.ledger)

    def _join(self) -> None:
        """Take this gateway's share of the mailboxes (all of them, alone on its ledger); a
        source named like another live gateway's but reaching other mailboxes stops the start."""
        self.intake.holder = self.leases.holds
        self.leases.join()

    def _holds_any(self, source: object) -> bool:
        mailboxes = mailboxes_of(source)
        return not mailboxes or any(self.leases.holds(mb.source, mb.account) for mb in mailboxes)

    def run(self, stop: threading.Event) -> None:
        self._join()
        self.start_workers()
        self.scheduler.recover()
        self.leases.on_taken = self.scheduler.recover_mailboxes
        lease_task = tasks.Task("leases", self.leases.run, label=f"leases of gateway {self.leases.name}")
        sources = tasks.start_supervised([lease_task], stop)  # first: the sources ask it
        sources += tasks.start_supervised([tasks.source_task(s) for s in self.sources], stop)
        if self.pimsync is not None:
            sync = tasks.Task("pimsync", self.pimsync.run, self.pimsync.failed, "contact sync")
            sources += tasks.start_supervised([sync], stop)
        folders = sorted({str(self.config.resolve(p).parent) for p in self.config.rules})
        helpers = [
            threading.Thread(target=self.scheduler.run, args=(stop,), name="retries", daemon=True),
            threading.Thread(target=tasks.watch_rules, args=(folders, self.reload_rules, stop), name="rules", daemon=True),
        ]
        if self.config.web is not None:
            helpers.append(
                threading.Thread(target=tasks.serve_web, args=(self, self.config.web.listen, stop), name="web", daemon=True)
            )
        for t in helpers:
            t.start()
        web = f"http://{self.config.web.listen}/" if self.config.web is not None else "off"
        log.info(
            "gateway running: %d sources, %d workers, %d rules; config %s; status page %s",
            len(self.sources),
            self.config.workers,
            len(self.rules.current.rules),
            self.config.path,
            web,
        )
        while not stop.wait(2.0):
            self.write_status()
        # The sources saw `stop` together; the workers end meanwhile, each after its batch in hand.
        self.stop_workers()
        tasks.join_together(sources, tasks.SOURCE_STOP_GRACE)
        self.write_status(running=False)
        self.leases.leave()  # the sources have stopped: the others may take their mailboxes now
        log.info("gateway stopped")

    def reload(self) -> bool:
        """SIGHUP: the rules, and the lists of mailboxes a source reads from a file."""
        for s in self.sources:
            reread = getattr(s, "reload_mailboxes", None)
            if reread is not None:
                reread()
        return self.reload_rules()

    def reload_rules(self) -> bool:
        ok = self.rules.reload()
        if ok and self._workers is not None:
            self._workers.reload()
        self.ledger.set_status("rules", self.rules.status())
        return ok

    # ---- status ---------------------------------------------------------------------------

    def write_status(self, running: bool = True) -> None:
        # only the sources whose mailboxes this gateway watches: another gateway writes the rest
        mine = [s for s in self.sources if self._holds_any(s)]
        status.write(
            self.ledger,
            mine,
            self.rules,
            workers=self.config.workers,
            queued=self.queue.qsize(),
            running=running,
            processes=self.processes,
            extra=self.pimsync.status() if self.pimsync is not None else None,
        )

    def summary(self) -> dict[str, int]:
        return status.summary(self.ledger)
