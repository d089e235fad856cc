"""Source kinds by their config `type`, like connectors by `crm.backend`.

A factory gets the source's config and the running gateway's `SourceEnv` and returns the
Source and the Writeback for it; its module registers itself on import (a duplicate type
fails at import).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import ConfigError


@dataclass(frozen=True)
class SourceEnv:
    config: Any  # gateway.config.Config
    ledger: Any  # gateway.ledger.Ledger
    spool: Any  # gateway.spool.Spool
    submit_bytes: Callable[..., int]  # (ref, raw) → location id, once durable (spool fsync + ledger row)
    # [(ref, raw bytes or a file Path, declared_size)] → location ids, made durable together
    submit_many: Callable[..., list[int]] | None = None


SourceFactory = Callable[[Any, SourceEnv], tuple[Any, Any]]
_SOURCES: dict[str, SourceFactory] = {}


def register_source(kind: str) -> Callable[[SourceFactory], SourceFactory]:
    def decorate(factory: SourceFactory) -> SourceFactory:
        if kind in _SOURCES:
            raise RuntimeError(f"source type {kind!r} registered twice")
        _SOURCES[kind] = factory
        return factory

    return decorate


def make_source(src_config: Any, env: SourceEnv) -> tuple[Any, Any]:
    kind = src_config.type
    if kind not in _SOURCES:
        try:
            importlib.import_module(f"gateway.sources.{kind}")
        except ModuleNotFoundError:
            pass
    if kind not in _SOURCES:
        raise ConfigError(f"sources: type {kind!r} is not available in this version")
    return _SOURCES[kind](src_config, env)
