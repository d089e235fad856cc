"""The `imap` source's config: server, TLS, login (password or OAuth2), IDLE and polling,
and the many mailboxes one entry may reach through a master user (`mailboxes:`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.mailboxes.config import SourceBase
from gateway.mailboxes.roster import ROSTER_FILE_MAX
from gateway.reading.boundedread import UnreadableFile, read_text_bounded
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
    username: str = ""  # the mailbox's login; with `mailboxes`, not used (each mailbox is its own)
    password: str | None = None
    oauth2: ImapOAuth2 | None = None
    idle: bool = True
    notify: bool = False  # IMAP NOTIFY where offered: all folders of a mailbox on one connection
    max_idle: int = Field(8, ge=0)  # folders kept in IDLE at once (Dovecot allows 10 connections)
    poll_interval: float = Field(30.0, gt=0)
    create_folders: bool = False
    batch: int = Field(100, ge=1)
    # Many mailboxes from this one entry: each mailbox's user, logged in as `master_user`
    # with `password` (Dovecot `user*master`, or SASL PLAIN with an authorization identity).
    mailboxes: list[str] = []
    mailboxes_file: str | None = None  # one mailbox per line (# comments); re-read every 5 minutes
    master_user: str | None = None
    master_login: Literal["separator", "authzid"] = "separator"
    master_separator: str = Field("*", min_length=1)
    # Per server (host and port), whichever source first names it: connections kept open for
    # IDLE (beyond them, folders are polled every `poll_interval`), and logins at once.
    max_connections: int = Field(1000, ge=0)
    max_logins: int = Field(10, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return read_secret_files(data, ("password",))

    @model_validator(mode="after")
    def _many(self) -> ImapConfig:
        if self.mailboxes and self.mailboxes_file:
            raise ValueError("give mailboxes or mailboxes_file, not both")
        many = bool(self.mailboxes or self.mailboxes_file)
        if many and not self.master_user:
            raise ValueError("mailboxes needs master_user (the account that may log in as each of them)")
        if self.master_user and self.oauth2:
            raise ValueError("master_user logs in with the master's password, not oauth2")
        if self.master_user and not many and not self.username:
            raise ValueError("master_user needs username (the mailbox to log in to) or mailboxes")
        if not many and not self.username:
            raise ValueError("missing key 'username' (or mailboxes with master_user)")
        return self

    @property
    def many(self) -> bool:
        """Whether this entry reaches several mailboxes (`mailboxes` or `mailboxes_file`)."""
        return bool(self.mailboxes or self.mailboxes_file)

    def for_mailbox(self, user: str) -> ImapConfig:
        """The entry as one of its mailboxes sees it: that user's login, through the master."""
        return self.model_copy(update={"username": user, "mailboxes": [], "mailboxes_file": None, "owner": []})

    @property
    def owners(self) -> list[str]:
        return list(self.owner) or ([self.username] if "@" in self.username else [])


_MAILBOX = re.compile(r"^[^\s*\x00-\x1f]+$")  # no blanks, no control characters, not the master separator


def mailbox_problems(cfg: ImapConfig, base_dir: Path) -> list[tuple[tuple[Any, ...], str]]:
    """What is wrong with an entry's list of mailboxes, each with the key (and index) it is at:
    a name with blanks or the master separator in it, a name twice, a file that cannot be read
    (named with its FILE:LINE)."""
    found: list[tuple[tuple[Any, ...], str]] = []
    seen: set[str] = set()
    for i, user in enumerate(cfg.mailboxes):
        if not _MAILBOX.match(user) or cfg.master_separator in user:
            found.append(
                (("mailboxes", i), f"mailboxes: {user!r} is not a mailbox's user name (no blanks or {cfg.master_separator!r})")
            )
        elif user in seen:
            found.append((("mailboxes", i), f"mailboxes: {user!r} is listed twice"))
        seen.add(user)
    if cfg.mailboxes_file:
        path = Path(cfg.mailboxes_file).expanduser()
        path = path if path.is_absolute() else base_dir / path
        try:
            lines = read_text_bounded(path, ROSTER_FILE_MAX).splitlines()
        except (UnreadableFile, UnicodeDecodeError):
            return found  # config/checks.py names an unreadable mailboxes_file for every kind
        for n, line in enumerate(lines, 1):
            user = line.split("#", 1)[0].strip()
            if user and (not _MAILBOX.match(user) or cfg.master_separator in user):
                found.append((("mailboxes_file",), f"mailboxes_file: {path}:{n}:1: {user!r} is not a mailbox's user name"))
    return found
