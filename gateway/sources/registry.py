"""Source kinds by their config `type`, like connectors by `crm.backend`.

A factory gets the source's config and the running gateway's `SourceEnv` and returns the
Source and the Writeback for it; its module registers itself on import (a duplicate type
fails at import).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import ConfigError
from gateway.registry import Registry


@dataclass(frozen=True)
class SourceEnv:
    config: Any  # gateway.config.Config
    ledger: Any  # gateway.ledger.Ledger
    spool: Any  # gateway.ledger.spool.Spool
    submit_bytes: Callable[..., int]  # (ref, raw) → location id, once durable (spool fsync + ledger row)
    # [(ref, raw bytes or a file Path, declared_size)] → location ids, made durable together
    submit_many: Callable[..., list[int]] | None = None


SourceFactory = Callable[[Any, SourceEnv], tuple[Any, Any]]
SOURCES: Registry[SourceFactory] = Registry("source type", "gateway.sources")


def register_source(kind: str) -> Callable[[SourceFactory], SourceFactory]:
    return SOURCES.register(kind)


def make_source(src_config: Any, env: SourceEnv) -> tuple[Any, Any]:
    factory = SOURCES.get(src_config.type)
    if factory is None:
        raise ConfigError(f"sources: type {src_config.type!r} is not available in this version")
    return factory(src_config, env)
