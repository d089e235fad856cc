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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from gateway import yamlpos
from gateway.boundedread import CONFIG_MAX, SECRET_MAX, MissingFile, UnreadableFile, read_text_bounded
from gateway.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(B?)\s*$", re.I)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def parse_size(value: Any) -> int:
    """`50MB`, `10 K`, `1G`, 1234 → bytes; K/KB, M/MB, G/GB are powers of 1024."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or like '10MB'")
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (write e.g. 512KB, 50MB, 1GB)")
    number, unit = float(m.group(1)), m.group(2).upper()
    return int(number * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit])


Size = Annotated[int, Field(ge=0)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret_files(data: Any, names: tuple[str, ...]) -> Any:
    """`password_file: /run/secrets/x` → `password: <file content, stripped>`.

    Only a regular file of at most SECRET_MAX bytes is read (not /dev/zero, not a FIFO).
    A message starts with the `*_file` key so `_describe` can place it on that key."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in names:
        file_key = f"{name}_file"
        if file_key in data:
            path = data.pop(file_key)
            if data.get(name):
                raise ValueError(f"{file_key}: give either {name} or {file_key}, not both")
            if not isinstance(path, str) or not path:
                raise ValueError(f"{file_key}: must be the path of a file, not {path!r}")
            try:
                data[name] = read_text_bounded(path, SECRET_MAX).strip()
            except UnreadableFile as exc:
                raise ValueError(f"{file_key}: cannot read {path}: {exc}") from None
            except UnicodeDecodeError as exc:
                raise ValueError(f"{file_key}: {path} is not UTF-8 text ({exc.reason})") from None
    return data


class LedgerConfig(Model):
    url: str = "sqlite:///var/gateway.db"


class CrmConfig(Model):
    backend: str = "sql"
    url: str = "sqlite:///var/crm.db"
    database: str | None = None
    username: str | None = None
    password: str | None = None
    access_key: str | None = None
    api_key: str | None = None
    secret: str | None = None
    dialect: Literal["vtiger", "vtenext"] | None = None
    company: int | None = None
    max_inline: Size = 5 * 1024**2
    timeout: float = 30.0
    protocol: Literal["json2", "jsonrpc"] | None = None  # odoo: json2 (19+, api_key) or jsonrpc; default by which secret is set
    attachment_url: str | None = None  # webhook: where the gateway serves attachments over max_inline ({sha256} filled in)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return _read_secret_files(data, ("password", "access_key", "api_key", "secret"))

    @field_validator("max_inline", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)


class TagsConfig(Model):
    error: list[str] = ["CRM error"]
    review: list[str] = ["CRM review"]
    keywords: dict[str, str] = {}


class SourceBase(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    owner: list[str] = []
    crm_user: str | None = None
    folders: list[str] = ["VLeads", "VContacts", "VAccounts", "CRM sync"]

    @field_validator("owner", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @property
    def owners(self) -> list[str]:
        return list(self.owner)

    @property
    def mailbox(self) -> str:
        return self.owners[0] if self.owners else ""


class MaildirSource(SourceBase):
    type: Literal["maildir"]
    path: str
    layout: Literal["fs", "maildir++", "auto"] = "auto"
    poll_interval: float = Field(1.0, gt=0)  # seconds, when inotify is not available
    watch: bool = True  # inotify through watchfiles; False = poll only


class ImapOAuth2(Model):
    token_command: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    authority: str = "https://login.microsoftonline.com"  # national clouds: https://login.microsoftonline.us, …
    scope: str = "https://outlook.office365.com/.default"  # e.g. https://outlook.office365.us/.default
    ca_file: str | None = None  # a CA bundle for the authority (a TLS-inspecting proxy); the source's is the server's
    mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "XOAUTH2"


class ImapSource(SourceBase):
    type: Literal["imap"]
    host: str
    port: int | None = None
    security: Literal["tls", "starttls", "none"] = "tls"
    allow_insecure: bool = False
    ca_file: str | None = None  # a CA bundle (PEM) for a server whose certificate an in-house CA signed
    username: str
    password: str | None = None
    oauth2: ImapOAuth2 | None = None
    idle: bool = True
    max_idle: int = Field(8, ge=0)  # folders kept in IDLE at once (Dovecot allows 10 connections)
    poll_interval: float = Field(30.0, gt=0)
    create_folders: bool = False
    batch: int = Field(100, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return _read_secret_files(data, ("password",))

    @property
    def owners(self) -> list[str]:
        return list(self.owner) or ([self.username] if "@" in self.username else [])


class SmtpUser(Model):
    """One user of the BCC intake: mail to their secret address lands on their behalf."""

    address: str  # the user's own address: the mailbox, and an allowed From
    token: str | None = Field(None, min_length=16, pattern=r"^[A-Za-z0-9_-]+$")  # intake crm+<token>@domain
    intake: list[str] = []  # further intake addresses of this user, as written
    crm_user: str | None = None
    allowed_from: list[str] = []  # more From addresses of the user (aliases); the address is always allowed
    password: str | None = None  # AUTH (PLAIN/LOGIN, after STARTTLS) as `address` with this password

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return _read_secret_files(data, ("password", "token"))


class SmtpRateLimit(Model):
    """Per client IP: a bucket of `burst` events refilled at `per_minute`; MAIL commands, refused
    RCPTs and failed AUTHs take one each. Empty → 450/421 until it refills."""

    per_minute: float = Field(300.0, gt=0)
    burst: int = Field(60, ge=1)


KNOWN_TOKENS = frozenset({"local-dev-token-change-me"})  # config.example.yaml's; any "change-me" counts too
EXPOSED_TOKEN_MIN = 20  # characters, when the intake listens beyond loopback


class SmtpSource(SourceBase):
    type: Literal["smtp"]
    listen: str = "127.0.0.1:2525"
    hostname: str | None = None  # the greeting/EHLO name; default: the machine's FQDN
    domain: str | None = None  # domain of crm+<token>@…; default: the user's address domain
    max_size: Size = 25 * 1024**2
    users: list[SmtpUser] = []
    folders: list[str] = ["BCC"]
    tls_cert: str | None = None  # PEM certificate (chain) for STARTTLS
    tls_key: str | None = None  # PEM private key; default: in tls_cert
    require_tls: bool = False  # refuse MAIL before STARTTLS (needs tls_cert)
    auth: Literal["off", "optional", "required"] = "off"  # PLAIN/LOGIN, offered only after STARTTLS
    require_pass: list[Literal["dkim", "spf"]] = []  # any one must pass, aligned with an allowed From
    trusted_authserv_id: str | None = None  # read dkim/spf from Authentication-Results by this id, no DNS
    dns_timeout: float = Field(5.0, gt=0)
    timeout: float = Field(60.0, gt=0)  # seconds of silence before the connection is closed
    connection_timeout: float = Field(600.0, gt=0)  # a whole connection, whatever it does
    rate_limit: SmtpRateLimit | None = SmtpRateLimit()
    max_connections_per_ip: int = Field(20, ge=1)
    max_connections: int | None = Field(None, ge=1)  # all clients; default and ceiling: from RLIMIT_NOFILE

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSource:
        if self.auth != "off" and not self.tls_cert:
            raise ValueError("auth needs tls_cert: AUTH is offered only after STARTTLS")
        if self.require_tls and not self.tls_cert:
            raise ValueError("require_tls needs tls_cert")
        if self.auth != "off" and not any(u.password for u in self.users):
            raise ValueError("auth is on but no user has a password")
        for u in self.users:
            if not u.token and not u.intake:
                raise ValueError(f"users: {u.address} has neither a token nor an intake address")
        return self

    @model_validator(mode="after")
    def _exposed_tokens(self) -> SmtpSource:
        """Beyond loopback anyone can guess at tokens: refuse the shipped default and short ones
        (on loopback they stay allowed, so the quick start works)."""
        import ipaddress

        host = self.listen.strip().rpartition(":")[0].strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False  # "" (every address) or a host name
        for u in [] if loopback else self.users:
            t = (u.token or "").lower()
            if t and ("changeme" in t.replace("-", "").replace("_", "") or t in KNOWN_TOKENS):
                raise ValueError(f"users: {u.address}: the token is a known default; on {self.listen}, beyond "
                                 "loopback, set a secret of your own (e.g. `openssl rand -hex 16`)")
            if t and len(t) < EXPOSED_TOKEN_MIN:
                raise ValueError(f"users: {u.address}: the token is shorter than {EXPOSED_TOKEN_MIN} characters; on "
                                 f"{self.listen}, beyond loopback, use a longer secret (e.g. `openssl rand -hex 16`)")
        return self

    def intake_domain(self, user: SmtpUser) -> str:
        return (self.domain or user.address.rpartition("@")[2]).lower()

    def intake_addresses(self, user: SmtpUser) -> list[str]:
        """The user's secret intake addresses: crm+<token>@<domain>, then the listed ones."""
        out = [f"crm+{user.token}@{self.intake_domain(user)}"] if user.token else []
        return out + list(user.intake)


class EwsSource(SourceBase):
    """Exchange Server (2016/2019/SE) over EWS with exchangelib."""

    type: Literal["ews"]
    url: str | None = None  # https://mail.example.com/EWS/Exchange.asmx; None = autodiscover
    server: str | None = None
    auth: Literal["ntlm", "basic", "oauth2"] = "ntlm"
    username: str
    password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    tenant_id: str | None = None
    mailboxes: list[str] = []  # reached by impersonation/delegation; default: the login's own
    access: Literal["delegate", "impersonation"] = "delegate"
    create_folders: bool = False
    streaming: bool = True
    poll_interval: float = Field(30.0, gt=0)
    timeout: float = Field(60.0, gt=0)
    verify_tls: bool = True
    build: str | None = Field(None, pattern=r"^\d+(\.\d+){1,3}$")  # e.g. 15.1.2507.6: skips version guessing
    page_size: int = Field(100, ge=1, le=512)  # SyncFolderItems MaxChangesReturned

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return _read_secret_files(data, ("password", "client_secret"))


class GraphSource(SourceBase):
    """Exchange Online through Microsoft Graph (app-only client credentials)."""

    type: Literal["graph"]
    tenant_id: str
    client_id: str
    client_secret: str | None = None
    mailboxes: list[str]
    authority: str = "https://login.microsoftonline.com"
    endpoint: str = "https://graph.microsoft.com/v1.0"
    create_folders: bool = False
    poll_interval: float = Field(5.0, gt=0)
    timeout: float = Field(60.0, gt=0)
    ca_file: str | None = None  # a CA bundle for a TLS-inspecting proxy (and the test double)
    page_size: int = Field(50, ge=1, le=1000)  # odata.maxpagesize for delta pages

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return _read_secret_files(data, ("client_secret",))


SourceConfig = Annotated[MaildirSource | ImapSource | SmtpSource | EwsSource | GraphSource, Field(discriminator="type")]


class WebConfig(Model):
    listen: str = "127.0.0.1:8025"


class RetryConfig(Model):
    max_attempts: int = Field(8, ge=1)  # then quarantined
    base_delay: float = Field(30.0, ge=0)  # seconds; doubles each attempt, with jitter
    max_delay: float = Field(3600.0, ge=0)


class Config(Model):
    ledger: LedgerConfig = LedgerConfig()
    crm: CrmConfig
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
    retry: RetryConfig = RetryConfig()
    sources: list[SourceConfig]
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

    def resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def db_url(self, url: str) -> str:
        """A relative SQLite path is relative to the config file's folder."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix):]))
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
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p in ("maildir", "imap", "smtp", "ews", "graph"))]
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
    _SOURCE_MODELS: dict[str, type[BaseModel]] = {
        "maildir": MaildirSource, "imap": ImapSource, "smtp": SmtpSource, "ews": EwsSource, "graph": GraphSource}
    model: type[BaseModel] | None = Config
    node = data
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if model is Config and path and path[0] == "sources":
                kind = node.get("type") if isinstance(node, dict) else None
                model = _SOURCE_MODELS.get(kind) if isinstance(kind, str) else None
            continue
        field = model.model_fields.get(part)
        node = node.get(part) if isinstance(node, dict) else None
        if field is None:
            return None
        ann = field.annotation
        model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if part == "sources":
            model = Config
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
