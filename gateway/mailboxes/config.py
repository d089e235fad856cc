"""What every mailbox's config has: a name, its owners, its CRM user and the folders it watches.

Each kind's own model (`gateway/mailboxes/<kind>/config.py`) adds its `type` and its keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from gateway.reading.config_base import Model


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


class RosterSource(SourceBase):
    """A source reaching many mailboxes with one service account (gateway/mailboxes/roster.py):
    named in `mailboxes:`, in `mailboxes_file:` (relative to the config's folder), or by the
    kind's directory lookup, re-read every `directory_refresh` seconds."""

    mailboxes: list[str] = []
    mailboxes_file: str | None = Field(None, min_length=1)
    directory_refresh: float = Field(300.0, gt=0)
