"""What handles mail, built from the config: ledger, CRM connector, rules, spool, write-backs
and the pipeline over them. The main process builds them once, with its sources beside;
a worker process builds the same parts and no source at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.config.context import FILE_SOURCE
from gateway.config.rulesholder import RulesHolder
from gateway.crm.base import Connector, make_connector
from gateway.engine.facts import rule_facts
from gateway.ledger import Ledger
from gateway.ledger.spool import Spool
from gateway.mailboxes.base import IntakePort, LedgerOnly, Source, SourceEnv, SourceRef, Writeback
from gateway.mailboxes.registry import make_source
from gateway.pipeline import Pipeline
from gateway.runtime.intake import Intake


def crm_connector(config: Config) -> Connector:
    crm = config.crm.model_copy(update={"url": config.db_url(config.crm.url)})
    return make_connector(crm)


def file_ref(path: Path, raw: bytes, *, source: str | None, folder: str, mailbox: str) -> SourceRef:
    """`process FILE.eml`: the file's content names the copy, so processing it again is a no-op."""
    return SourceRef(source or FILE_SOURCE, mailbox, folder, hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class Parts:
    config: Config
    ledger: Ledger
    crm: Connector
    rules: RulesHolder
    spool: Spool
    writebacks: dict[str, Writeback]
    pipeline: Pipeline

    def close(self) -> None:
        self.crm.close()
        self.ledger.close()


# The sources a gateway runs, and the write-back of each, as the source registry makes them.
Made = tuple[list[Source], dict[str, Writeback]]


def build(
    config: Config,
    make_mailboxes: Callable[[Ledger, Spool, RulesHolder], Made],
    *,
    connector: Connector | None = None,
    rules: RulesHolder | None = None,
) -> tuple[Parts, list[Source]]:
    """The parts and the sources; what was opened is closed again when a later part fails."""
    ledger = Ledger(config.db_url(config.ledger.url))
    made: Connector | None = None  # closed again on a failure; a connector handed in is the caller's
    try:
        crm = connector or (made := crm_connector(config))
        holder = rules or RulesHolder(config)
        spool = Spool(config.resolve(config.spool))
        sources, writebacks = make_mailboxes(ledger, spool, holder)
        writebacks.setdefault(FILE_SOURCE, LedgerOnly())
        pipeline = Pipeline(config, ledger, crm, holder, spool, writebacks)
    except BaseException:
        if made is not None:
            made.close()
        ledger.close()
        raise
    return Parts(config, ledger, crm, holder, spool, writebacks, pipeline), sources


def mailboxes(config: Config, intake: IntakePort, rules: RulesHolder) -> Made:
    """The configured sources and their write-backs, speaking to the gateway through `intake`."""
    env = SourceEnv(
        intake=intake,
        max_message_size=config.max_message_size,
        resolve=config.resolve,
        tag_keywords=dict(config.tags.keywords),
        rule_facts=lambda: rule_facts(rules.current, config.base_dir),
    )  # the rules in force when asked
    sources: list[Source] = []
    writebacks: dict[str, Writeback] = {}
    for src in config.sources:
        source, writeback = make_source(src, env)
        sources.append(source)
        writebacks[src.name] = writeback
    return sources, writebacks


def for_worker_process(config: Config) -> Parts:
    """A worker process's parts: write-backs to tag what it handles, no source. The registry
    makes a write-back together with its source (it reuses the source's connection settings);
    that source object is dropped unstarted. Its intake only answers what is known (an IMAP
    write-back asks): nothing runs that would hand a copy over."""

    def writebacks_only(ledger: Ledger, spool: Spool, rules: RulesHolder) -> Made:
        return [], mailboxes(config, Intake(config, ledger, spool), rules)[1]

    return build(config, writebacks_only)[0]
