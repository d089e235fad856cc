"""config.yaml: typed models, `${ENV}` interpolation, `*_file` secrets, positioned errors.

Every key but `sources` and `crm` has a default. Unknown keys are errors. Relative paths
(rule globs, Maildir roots, SQLite files) are resolved against the config file's folder, so
a config means the same thing whatever the working directory.
"""

from __future__ import annotations

import os
import re
from datetime import date
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from gateway import yamlpos
from gateway.boundedread import CONFIG_MAX, MissingFile, UnreadableFile, read_text_bounded
from gateway.config_base import Model, Size, parse_size
from gateway.crm.config_models import MODELS as CRM_MODELS
from gateway.crm.config_models import (
    OTHER,
    CrmConfig,
    OdooConfig,
    SqlConfig,
    TrytonConfig,
    VtigerConfig,
    WebhookConfig,
    backend_tag,
)
from gateway.errors import ConfigError
from gateway.mailboxes.registry import MODELS, SourceConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class LedgerConfig(Model):
    url: str = "sqlite:///var/gateway.db"


# one model per backend (gateway/crm/config_models.py), picked by `backend`
CrmSettings = Annotated[
    Union[  # noqa: UP007 (a union of Annotated members)
        Annotated[SqlConfig, Tag("sql")],
        Annotated[TrytonConfig, Tag("tryton")],
        Annotated[VtigerConfig, Tag("vtiger")],
        Annotated[OdooConfig, Tag("odoo")],
        Annotated[WebhookConfig, Tag("webhook")],
        Annotated[CrmConfig, Tag(OTHER)],
    ],
    Discriminator(backend_tag),
]
_CRM_TAGS = frozenset((*CRM_MODELS, OTHER))


class TagsConfig(Model):
    error: list[str] = ["CRM error"]
    review: list[str] = ["CRM review"]
    keywords: dict[str, str] = {}


class WebConfig(Model):
    listen: str = "127.0.0.1:8025"


class GatewayConfig(Model):
    """This gateway among others sharing one ledger (gateway/runtime/leases.py)."""

    # who holds a mailbox's lease, shown in `status`; default: the host name and a short hash of
    # the config file's path, stable across restarts, distinct for two configs on one machine
    name: str | None = Field(None, min_length=1, max_length=100)
    # seconds a mailbox's lease lasts unrenewed: a dead gateway's mailboxes are taken over
    # after at most this long; renewed every third of it
    lease: float = Field(30.0, ge=1.0, le=3600.0)


class RetryConfig(Model):
    max_attempts: int = Field(8, ge=1)  # then quarantined
    base_delay: float = Field(30.0, ge=0)  # seconds; doubles each attempt, with jitter
    max_delay: float = Field(3600.0, ge=0)


class Config(Model):
    ledger: LedgerConfig = LedgerConfig()
    crm: CrmSettings
    rules: list[str] = ["rules/*.yaml"]
    spool: str = "var/spool"  # raw messages until they are done (kept for retry, review, quarantine)
    # pipeline threads (when processes is 1). Default: 1 with the embedded CRM (CPU-bound: a
    # second thread only contends for the GIL), 4 with a CRM over the network (threads overlap
    # its round trips); see _default_workers.
    workers: int = Field(1, ge=1, le=64)
    processes: int = Field(1, ge=1, le=64)  # >1: that many worker processes
    # copies a worker takes from the queue at once: their claims, attaches and outcomes share
    # transactions (1: every message alone)
    batch: int = Field(16, ge=1, le=256)
    # seconds one stage of one message (parse, rules, CRM, tags) may take; over it the message is
    # quarantined with the stage in the reason and its worker replaced (gateway/budget.py)
    message_budget: float = Field(30, gt=0)
    max_message_size: Size = 50 * 1024**2
    since: date | None = None
    internal_domains: list[str] = []
    exclude: list[str] = []
    freemail_domains: Literal["default"] | list[str] = "default"
    tags: TagsConfig = TagsConfig()
    gateway: GatewayConfig = GatewayConfig()
    retry: RetryConfig = RetryConfig()
    # each kind of mailbox brings its own model (gateway/mailboxes/registry.py); `type` picks it
    sources: list[Annotated[SourceConfig, Field(discriminator="type")]]
    web: WebConfig | None = None
    base_dir: Path = Path(".")  # set by load_config: the config file's folder
    path: Path | None = None  # the config file itself

    @field_validator("max_message_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)

    @model_validator(mode="before")
    @classmethod
    def _default_workers(cls, data: Any) -> Any:
        if isinstance(data, dict) and "workers" not in data:
            crm = data.get("crm")
            backend = crm.get("backend", "sql") if isinstance(crm, dict) else getattr(crm, "backend", "sql")
            data = {**data, "workers": 1 if backend == "sql" else 4}
        return data

    @model_validator(mode="after")
    def _unique_source_names(self) -> Config:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique: {', '.join(dupes)}")
        return self

    @cached_property
    def freemail(self) -> frozenset[str]:
        if self.freemail_domains == "default":
            text = resources.files("gateway.data").joinpath("freemail.txt").read_text(encoding="utf-8")
            return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))
        return frozenset(d.strip().lower() for d in self.freemail_domains)

    @cached_property
    def gateway_name(self) -> str:
        """`gateway.name`, or the host name and a hash of the config file's path."""
        if self.gateway.name:
            return self.gateway.name
        import hashlib
        import socket

        where = str(self.path) if self.path is not None else str(self.base_dir.resolve())
        return f"{socket.gethostname()}-{hashlib.sha256(where.encode()).hexdigest()[:6]}"

    def resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def db_url(self, url: str) -> str:
        """A relative SQLite path is relative to the config file's folder."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r} (configured: {', '.join(s.name for s in self.sources)})")


def _interpolate(value: Any, path: tuple[Any, ...], pos: yamlpos.Positions, problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path + (k,), pos, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path + (i,), pos, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(f"{pos.where(path)}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return ""

    return _ENV.sub(replace, value)


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(err: ErrorDetails, data: Any, pos: yamlpos.Positions) -> str:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p in MODELS)]
    if loc[:1] == ["crm"] and len(loc) > 1 and loc[1] in _CRM_TAGS:  # the union's tag, not a key
        del loc[1]
    dotted = ".".join(str(p) for p in loc) or "(top)"
    if err["type"] == "extra_forbidden":
        parent = loc[:-1]
        model = _model_at(parent, data)
        hint = _did_you_mean(str(loc[-1]), list(model.model_fields) if model else [])
        return f"{pos.where(loc, key=True)}: unknown key '{dotted}'{hint}"
    if err["type"] == "missing":
        return f"{pos.where(loc[:-1])}: missing key '{dotted}'"
    msg = err["msg"].removeprefix("Value error, ")
    first = msg.split(":", 1)[0]
    if first.endswith("_file") and " " not in first:  # from _read_secret_files: point at that key
        return f"{pos.where([*loc, first], key=True)}: {'.'.join([*map(str, loc), first])}: {msg.split(':', 1)[1].strip()}"
    return f"{pos.where(loc)}: {dotted}: {msg}"


def _model_at(path: list[Any], data: Any) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Config
    node = data
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if model is Config and path and path[0] == "sources":
                kind = node.get("type") if isinstance(node, dict) else None
                model = MODELS.get(kind) if isinstance(kind, str) else None
            continue
        field = model.model_fields.get(part)
        node = node.get(part) if isinstance(node, dict) else None
        if field is None:
            return None
        ann = field.annotation
        model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if part == "sources":
            model = Config
        if part == "crm":  # a union: hint among every backend's keys, as one model did
            model = CrmConfig
    return model


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; ConfigError lists every problem as FILE:LINE:COL."""
    path = Path(path)
    shown = str(path)
    try:
        text = read_text_bounded(path, CONFIG_MAX)
        data, pos = yamlpos.load_with_positions(text, shown)
    except MissingFile:
        raise ConfigError(f"{shown}: no such config file") from None
    except UnreadableFile as exc:
        raise ConfigError(f"{shown}:1:1: cannot read the config: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}:1:1: not UTF-8 text ({exc.reason})") from None
    except yamlpos.YamlSyntaxError as exc:
        raise ConfigError(f"{shown}:{exc.line}:{exc.col}: {exc.message}") from None
    if pos.problems:
        raise ConfigError(pos.problems[0], list(pos.problems))
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}:1:1: the config must be a mapping of keys")
    problems: list[str] = []
    data = _interpolate(data, (), pos, problems)
    if problems:
        raise ConfigError(problems[0], problems)
    for reserved in ("base_dir", "path"):
        if reserved in data:
            problems.append(f"{pos.where([reserved], key=True)}: unknown key '{reserved}'")
    if problems:
        raise ConfigError(problems[0], problems)
    try:
        config = Config.model_validate({**data, "base_dir": path.resolve().parent, "path": path.resolve()})
    except ValidationError as exc:
        problems = [_describe(e, data, pos) for e in exc.errors()]
        raise ConfigError(problems[0], problems) from None
    from gateway import config_checks

    problems = [f"{pos.where(where)}: {message}" for where, message in config_checks.problems(config)]
    if problems:
        raise ConfigError(problems[0], problems)
    return config


def default_config_path() -> Path:
    for candidate in (Path("config.yaml"), Path("config.example.yaml")):
        if candidate.exists():
            return candidate
    return Path("config.yaml")
