"""The `ews` source's config: Exchange Server over EWS (NTLM, basic or OAuth2), mailboxes reached."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.mailboxes.config import RosterSource
from gateway.reading.config_base import read_secret_files


class EwsConfig(RosterSource):
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
    # mailboxes / mailboxes_file (RosterSource) are reached by impersonation or delegation;
    # with neither, the login's own mailbox
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
        return read_secret_files(data, ("password", "client_secret"))
