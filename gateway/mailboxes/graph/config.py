"""The `graph` source's config: Exchange Online through Microsoft Graph (app-only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.mailboxes.config import RosterSource
from gateway.reading.config_base import read_secret_files


class GraphConfig(RosterSource):
    """Exchange Online through Microsoft Graph (app-only client credentials)."""

    type: Literal["graph"]
    tenant_id: str
    client_id: str
    client_secret: str | None = None
    mailboxes_group: str | None = Field(None, min_length=1)  # a group's object id or mail address
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
        return read_secret_files(data, ("client_secret",))

    @model_validator(mode="after")
    def _some_mailboxes(self) -> GraphConfig:
        if not (self.mailboxes or self.mailboxes_file or self.mailboxes_group):
            raise ValueError(
                "no mailboxes: give mailboxes (a list of addresses), mailboxes_file (a file of them) "
                "or mailboxes_group (a group whose members are watched)"
            )
        return self
