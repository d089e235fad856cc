"""The `maildir` source's config: a Maildir tree on this machine, watched by inotify or polled."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.mailboxes.config import SourceBase


class MaildirConfig(SourceBase):
    type: Literal["maildir"]
    path: str
    layout: Literal["fs", "maildir++", "auto"] = "auto"
    poll_interval: float = Field(1.0, gt=0)  # seconds, when inotify is not available
    watch: bool = True  # inotify through watchfiles; False = poll only
