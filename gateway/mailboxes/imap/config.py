"""The `imap` source's config: server, TLS, login (password or OAuth2), IDLE and polling."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.mailboxes.config import SourceBase
from gateway.reading.config_base import Model, read_secret_files


class ImapOAuth2(Model):
    token_command: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    authority: str = "https://login.microsoftonline.com"  # national clouds: https://login.microsoftonline.us, …
    scope: str = "https://outlook.office365.com/.default"  # e.g. https://outlook.office365.us/.default
    ca_file: str | None = None  # a CA bundle for the authority (a TLS-inspecting proxy); the source's is the server's
    mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "XOAUTH2"


class ImapConfig(SourceBase):
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
        return read_secret_files(data, ("password",))

    @property
    def owners(self) -> list[str]:
        return list(self.owner) or ([self.username] if "@" in self.username else [])
