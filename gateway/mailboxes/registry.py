"""Mailbox kinds by their config `type`, like connectors by `crm.backend`.

A kind is a package `gateway/mailboxes/<type>/` with
- `config.py`: its pydantic model (listed in `SourceConfig` below; gateway/config/model.py builds the
  `sources:` union from it, so a kind's keys and defaults live with its code);
- `source.py`: `make(config, env) -> (Source, Writeback)`, imported only when a source of
  that kind is built (exchangelib, aiosmtpd and imapclient load only for kinds in use);
- optionally `check.py`: `check(config, facts, where) -> [problem, ...]`, what `check`
  finds only by talking to the mailbox (one signature for every kind that has one).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import get_args

from gateway.errors import ConfigError
from gateway.mailboxes.base import RuleFacts, Source, SourceEnv, Writeback
from gateway.mailboxes.config import SourceBase
from gateway.mailboxes.ews.config import EwsConfig
from gateway.mailboxes.graph.config import GraphConfig
from gateway.mailboxes.imap.config import ImapConfig
from gateway.mailboxes.maildir.config import MaildirConfig
from gateway.mailboxes.smtp.config import SmtpConfig

# In this order pydantic names the kinds in its "does not match any of the expected tags".
SourceConfig = MaildirConfig | ImapConfig | SmtpConfig | EwsConfig | GraphConfig


def _kind(model: type[SourceBase]) -> str:
    (name,) = get_args(model.model_fields["type"].annotation)
    return str(name)


MODELS: dict[str, type[SourceBase]] = {}  # config `type` → model
for _model in get_args(SourceConfig):
    if _kind(_model) in MODELS:
        raise RuntimeError(f"source type {_kind(_model)!r} registered twice")
    MODELS[_kind(_model)] = _model


def make_source(src_config: SourceConfig, env: SourceEnv) -> tuple[Source, Writeback]:
    """The Source and the Writeback for one configured mailbox."""
    if src_config.type not in MODELS:
        raise ConfigError(f"sources: type {src_config.type!r} is not available in this version")
    module = importlib.import_module(f"gateway.mailboxes.{src_config.type}.source")
    return module.make(src_config, env)


def check_source(src_config: SourceConfig, facts: RuleFacts, where: str) -> list[str]:
    """What `check` finds wrong with one mailbox by talking to it (empty: fine, or nothing to ask)."""
    name = f"gateway.mailboxes.{src_config.type}.check"
    if importlib.util.find_spec(name) is None:
        return []
    return importlib.import_module(name).check(src_config, facts, where)
