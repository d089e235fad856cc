"""The `smtp` source's config: the BCC intake's listener, users, TLS, AUTH and sender checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.mailboxes.config import SourceBase
from gateway.reading.config_base import Model, Size, parse_size, read_secret_files


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
        return read_secret_files(data, ("password", "token"))


class SmtpRateLimit(Model):
    """Per client IP: a bucket of `burst` events refilled at `per_minute`; MAIL commands, refused
    RCPTs and failed AUTHs take one each. Empty → 450/421 until it refills."""

    per_minute: float = Field(300.0, gt=0)
    burst: int = Field(60, ge=1)


KNOWN_TOKENS = frozenset({"local-dev-token-change-me"})  # config.example.yaml's; any "change-me" counts too
EXPOSED_TOKEN_MIN = 20  # characters, when the intake listens beyond loopback


class SmtpConfig(SourceBase):
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
    def _consistent(self) -> SmtpConfig:
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
    def _exposed_tokens(self) -> SmtpConfig:
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
                raise ValueError(
                    f"users: {u.address}: the token is a known default; on {self.listen}, beyond "
                    "loopback, set a secret of your own (e.g. `openssl rand -hex 16`)"
                )
            if t and len(t) < EXPOSED_TOKEN_MIN:
                raise ValueError(
                    f"users: {u.address}: the token is shorter than {EXPOSED_TOKEN_MIN} characters; on "
                    f"{self.listen}, beyond loopback, use a longer secret (e.g. `openssl rand -hex 16`)"
                )
        return self

    def intake_domain(self, user: SmtpUser) -> str:
        return (self.domain or user.address.rpartition("@")[2]).lower()

    def intake_addresses(self, user: SmtpUser) -> list[str]:
        """The user's secret intake addresses: crm+<token>@<domain>, then the listed ones."""
        out = [f"crm+{user.token}@{self.intake_domain(user)}"] if user.token else []
        return out + list(user.intake)
