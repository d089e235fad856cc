"""config.yaml's typed models: the document, with the mailboxes' and CRM backends' models.

Every key but `sources` and `crm` has a default. Unknown keys are errors. Relative paths
(rule globs, Maildir roots, SQLite files) are resolved against the config file's folder, so
a config means the same thing whatever the working directory. Reading a file into these
models (`${ENV}`, positioned errors, load-time checks) is gateway/config/load.py.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

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
from gateway.mailboxes.carddav.config import AddressBookConfig, PimsyncConfig
from gateway.mailboxes.registry import SourceConfig
from gateway.reading.config_base import Model, Size, parse_size, read_secret_files


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


class TagsConfig(Model):
    error: list[str] = ["CRM error"]
    review: list[str] = ["CRM review"]
    # what a mail a person files by hand from their mailbox gets (no rule ran to tag it): the
    # tags the shipped rules give synced mail
    linked: list[str] = ["CRM sync", "Synced"]
    keywords: dict[str, str] = {}


class WebUser(Model):
    """A person who may sign in to the console and the API (`crm-gateway user add` writes one
    to `web.users_file`; the config may list them too)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\s:]+$")
    # argon2 (`$argon2id$...`): never the password itself; none: this person signs in only
    # through OpenID Connect (`web.oidc`)
    password_hash: str | None = Field(None, min_length=1)
    role: Literal["admin", "user"] = "user"
    # the person's mail addresses: the mailboxes they own (a source's `owner`/`crm_user`, or an
    # account of a source reaching many mailboxes) and the CRM user whose records they may see
    addresses: list[str] = []


class WebOidc(Model):
    """Sign-in through an OpenID Connect provider (authorization code flow with PKCE). The
    provider's `claim` (a verified e-mail address by default) names the person: the `web.users`
    entry with that address (or that name) signs in, with its role."""

    issuer: str = Field(pattern=r"^https?://")  # its /.well-known/openid-configuration is read
    client_id: str = Field(min_length=1)
    client_secret: str | None = None
    scopes: list[str] = ["openid", "email", "profile"]
    claim: str = "email"
    # where the provider sends the person back; default: this server's /signin/oidc/callback as
    # the request reached it (give it behind a proxy that rewrites the host)
    redirect_url: str | None = None
    label: str = "Sign in with single sign-on"

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return read_secret_files(data, ("client_secret",))


class WebConfig(Model):
    listen: str = "127.0.0.1:8025"
    users: list[WebUser] = []
    oidc: WebOidc | None = None
    # the key signing session cookies; made (random) on first start when missing, so sessions
    # survive a restart. Relative to the config's folder.
    secret_file: str = "var/web-secret"
    # API tokens (`crm-gateway token add`): their sha256 only, never the token
    tokens_file: str = "var/api-tokens.json"
    # people added by `crm-gateway user add` (YAML, 0600), read again when it changes; the
    # config's `users` count too, and a name the config lists is the config's
    users_file: str = "var/web-users.yaml"
    session_hours: float = Field(12.0, gt=0, le=24 * 90)

    @model_validator(mode="after")
    def _unique_users(self) -> WebConfig:
        names = [u.name for u in self.users]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"web.users: names must be unique: {', '.join(dupes)}")
        return self

    # The HTTPS address people and Outlook reach the gateway at (its proxy's, usually): the
    # Outlook add-in's manifest names it, and Outlook loads add-ins over HTTPS only.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not v.startswith("https://") or len(v) <= len("https://") or any(c in v for c in " ?#\"'<>"):
            raise ValueError(
                f"must be an https:// address without query or fragment, e.g. https://crm-gateway.example.com (got {v!r})"
            )
        return v.rstrip("/")


# `processes: auto` stops here: past four processes the ledger's and the embedded CRM's
# single writer, not the CPU, bounds the rate.
AUTO_PROCESSES_MAX = 4


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _on_sqlite(url: str) -> bool:
    return url.strip().lower().startswith("sqlite")


def _stores_in_process(data: dict[str, Any]) -> bool:
    """Whether the CRM and the ledger are both SQLite files (the defaults): then the pipeline is
    CPU-bound; with a CRM server or PostgreSQL it waits on round trips, which threads overlap
    (bench/pipeline.py --db postgresql: 0.19 of the baseline with one thread, 0.48 with 4)."""

    def url_of(part: Any, default: str) -> str:
        value = part.get("url", default) if isinstance(part, dict) else getattr(part, "url", default)
        return value if isinstance(value, str) else default

    crm, ledger = data.get("crm"), data.get("ledger")
    backend = crm.get("backend", "sql") if isinstance(crm, dict) else getattr(crm, "backend", "sql")
    return backend == "sql" and _on_sqlite(url_of(crm, "sqlite:")) and _on_sqlite(url_of(ledger, "sqlite:"))


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
    # pipeline threads (when processes is 1). Default: 1 with the embedded CRM and ledger on
    # SQLite (CPU-bound: a second thread only contends for the GIL), 4 when either is across a
    # socket, a CRM server or PostgreSQL (threads overlap the round trips); see _default_workers.
    workers: int = Field(1, ge=1, le=64)
    # >1: that many worker processes; "auto" (the default): one per core this process may run
    # on, up to AUTO_PROCESSES_MAX, with the embedded CRM and ledger on SQLite (CPU-bound), and
    # 1 (threads) otherwise; see worker_processes()
    processes: int | Literal["auto"] = "auto"
    # copies a worker takes from the queue at once: their claims, attaches and outcomes share
    # transactions (1: every message alone)
    batch: int = Field(16, ge=1, le=256)
    # seconds one stage of one message (parse, rules, CRM, tags) may take; over it the message is
    # quarantined with the stage in the reason and its worker replaced (gateway/pipeline/budget.py)
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
    # the contact sync with the users' address books (gateway/pimsync/, `crm-gateway pimsync`)
    pimsync: PimsyncConfig = PimsyncConfig()
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
            data = {**data, "workers": 1 if _stores_in_process(data) else 4}
        return data

    @model_validator(mode="after")
    def _unique_source_names(self) -> Config:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _pimsync_sources(self) -> Config:
        for i, book in enumerate(self.pimsync.addressbooks):
            if book.source is not None and not self._book_of_source(book).crm_user:
                raise ValueError(
                    f"pimsync.addressbooks.{i}.source: {book.source!r} is no configured source with a crm_user or owner"
                    f" (sources: {', '.join(s.name for s in self.sources) or 'none'})"
                )
        return self

    def addressbooks(self) -> list[AddressBookConfig]:
        """`pimsync.addressbooks`, each with what its `source` gives filled in."""
        return [self._book_of_source(b) if b.source else b for b in self.pimsync.addressbooks]

    def _book_of_source(self, book: AddressBookConfig) -> AddressBookConfig:
        src = next((s for s in self.sources if s.name == book.source), None)
        if src is None:
            return book
        update: dict[str, Any] = {"crm_user": book.crm_user or src.crm_user or src.mailbox}
        login, password = getattr(src, "username", ""), getattr(src, "password", None)
        if not book.username and login and password:
            update.update(username=login, password=password)
        return book.model_copy(update=update)

    @field_validator("processes")
    @classmethod
    def _processes_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 64:
            raise ValueError("processes must be 'auto' or a number from 1 to 64")
        return v

    def worker_processes(self) -> int:
        """How many worker processes `processes` means on this machine (1: worker threads)."""
        if self.processes != "auto":
            return self.processes
        if not (self.crm.backend == "sql" and _on_sqlite(self.crm.url) and _on_sqlite(self.ledger.url)):
            return 1
        return max(1, min(usable_cores(), AUTO_PROCESSES_MAX))

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
