"""What handles mail, built from the config: ledger, CRM connector, rules, spool, write-backs
and the pipeline over them. The main process builds them once, with its sources beside;
a worker process builds the same parts and no source at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.context import FILE_SOURCE
from gateway.crm.base import Connector, make_connector
from gateway.engine.facts import RuleFacts, rule_facts
from gateway.errors import Permanent
from gateway.ledger import Ledger
from gateway.mailboxes.base import LedgerOnly, Source, SourceEnv, SourceRef, Writeback
from gateway.mailboxes.registry import make_source
from gateway.pipeline import Pipeline
from gateway.rulesholder import RulesHolder
from gateway.spool import Spool


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


def build(config: Config, make_mailboxes: Callable[[Ledger, Spool, RulesHolder], Made], *, connector: Connector | None = None,
          rules: RulesHolder | None = None) -> tuple[Parts, list[Source]]:
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


def mailboxes(config: Config, env: SourceEnv) -> Made:
    sources: list[Source] = []
    writebacks: dict[str, Writeback] = {}
    for src in config.sources:
        source, writeback = make_source(src, env)
        sources.append(source)
        writebacks[src.name] = writeback
    return sources, writebacks


def facts_of(config: Config, rules: RulesHolder) -> Callable[[], RuleFacts]:
    """What the rules in force can do, asked by a mailbox when it needs it (rules reload)."""
    return lambda: rule_facts(rules.current, config.base_dir)


def _no_intake(*_args: object, **_kw: object) -> Any:
    raise Permanent("a worker process takes in no mail: its sources run in the main process")


def for_worker_process(config: Config) -> Parts:
    """A worker process's parts: write-backs to tag what it handles, no source. The registry
    makes a write-back together with its source (it reuses the source's connection settings);
    that source object is dropped unstarted."""

    def writebacks_only(ledger: Ledger, spool: Spool, rules: RulesHolder) -> Made:
        env = SourceEnv(config=config, ledger=ledger, spool=spool, submit_bytes=_no_intake, submit_many=_no_intake,
                        rule_facts=facts_of(config, rules))
        return [], mailboxes(config, env)[1]

    return build(config, writebacks_only)[0]
