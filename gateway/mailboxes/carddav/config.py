"""The `pimsync:` section of config.yaml: which address books the contact sync keeps in step
with the CRM, and what a card deleted in a mailbox does to its CRM record."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.reading.config_base import Model, read_secret_files


class AddressBookConfig(Model):
    # the address book's name in the ledger, in `pimsync conflicts` and in logs
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    url: str  # the address book collection, e.g. https://dav.example.com/alice/contacts/
    username: str = ""
    password: str = ""  # or password_file
    # the CRM user whose contacts this address book holds (contacts assigned to them); or
    # `source`: a configured mailbox whose `crm_user` (else its owner) it takes, with its
    # login when this book gives none (a groupware server's one account for mail and contacts)
    crm_user: str = Field("", max_length=320)
    source: str | None = Field(None, min_length=1)
    vcard_version: Literal["3.0", "4.0"] = "3.0"  # what new cards are written as
    verify_tls: bool = True
    timeout: float = Field(60.0, gt=0, le=600)  # seconds per request

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        return read_secret_files(data, ("password",))

    @model_validator(mode="after")
    def _whose(self) -> AddressBookConfig:
        if not self.crm_user and not self.source:
            raise ValueError("give crm_user (whose contacts this book holds) or source (a mailbox whose user it is)")
        return self

    @field_validator("url")
    @classmethod
    def _collection_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")) or any(c in v for c in " ?#"):
            raise ValueError(f"must be the http(s):// address of an address book collection, without query (got {v!r})")
        if "@" in urlsplit(v).netloc:  # a password there would be printed with every error
            raise ValueError("must not hold a user or password (user@host): give them as username and password/password_file")
        return v if v.endswith("/") else v + "/"


class PimsyncConfig(Model):
    # a card deleted in a mailbox: "unlink" keeps the CRM contact (it just leaves that address
    # book for good), "delete" deletes the CRM contact too
    on_card_deleted: Literal["unlink", "delete"] = "unlink"
    # a round that would remove more than half of a book's links (and more than 10) stops and
    # says so, as a listing gone wrong looks the same as a user emptying the book; true lets it
    allow_mass_removal: bool = False
    addressbooks: list[AddressBookConfig] = []
    # inside `crm-gateway run`: read the address books every `every` seconds (they offer no
    # push this client uses), and ask the CRM's change feed every `poll` seconds, so a CRM
    # change is in the book within seconds whatever `every` is
    every: float = Field(300.0, ge=1, le=86400)
    poll: float = Field(2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _unique(self) -> PimsyncConfig:
        names = [b.name for b in self.addressbooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pimsync.addressbooks: names must be unique: {', '.join(dupes)}")
        return self

    def book(self, name: str) -> AddressBookConfig | None:
        return next((b for b in self.addressbooks if b.name == name), None)
