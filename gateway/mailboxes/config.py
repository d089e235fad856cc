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
