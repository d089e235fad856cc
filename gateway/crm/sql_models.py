"""Tables of the embedded CRM (`crm.backend: sql`), as SQLAlchemy 2 declarative models.

The schema itself is created and upgraded only by the Alembic scripts in
`gateway/crm/migrations/versions/`; these models must match the newest script (a unit test
compares them). Change both together: a model change without a migration never reaches an
existing database.

Layout:
- `accounts`, `contacts`, `leads`: the parties; each has `owner` ("assigned to") and
  `created_by_gateway` (False for records a person made, which `forget` must keep).
- Text, not VARCHAR(n), wherever a hostile mail writes the value: a long header must not
  turn into a refused (quarantined) mail. Names are cut to 255 characters on create.
- `party_emails`: any number of addresses per party, with `address_key` (normalised and
  case-folded by `gateway.message.addresses.key`) for exact, case-insensitive lookups.
- `blobs`: bytes stored once per sha256 — raw .eml files and attachment payloads alike.
- `emails`: one row per (message_id, content_hash); `version_of` points at the first email
  with the same Message-ID but other content.
- `email_links`: which parties an email is attached to; `email_attachments`: its files.
- `notes`: notes the rules put on records, unique per (key, record) (migration 0004).
- contacts' address-book fields and `crm_changes`, the change feed kept by triggers (0006).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

VERSION_TABLE = "crm_schema_version"  # not "alembic_version": the ledger may share the database


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones: it stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime}


class _Party:
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(320), default="")
    fields: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)  # rule `fields` with no column
    created_by_gateway: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(_Party, Base):
    __tablename__ = "accounts"
    name: Mapped[str] = mapped_column(sa.String(255))
    domain: Mapped[str] = mapped_column(sa.String(255), default="", index=True)


class Contact(_Party, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("sync_key", name="uq_contacts_sync_key"),
        sa.Index("ix_contacts_owner", "owner"),
        # an id is never given again after a delete: the sync's links and the feed name a
        # record by id, and a reused one would take over the deleted person's card
        {"sqlite_autoincrement": True},
    )
    first_name: Mapped[str] = mapped_column(sa.String(255), default="")
    last_name: Mapped[str] = mapped_column(sa.String(255), default="")
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    # what an address book carries besides names and addresses (migration 0006)
    title: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    phone_work: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    phone_mobile: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    street: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    city: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    region: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    postal_code: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    country: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    manager_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL", name="fk_contacts_manager"), index=True
    )
    # the key a sync created this record under (a card's UID): its replay finds the record
    sync_key: Mapped[str | None] = mapped_column(sa.String(255))


class Lead(_Party, Base):
    __tablename__ = "leads"
    first_name: Mapped[str] = mapped_column(sa.String(255), default="")
    last_name: Mapped[str] = mapped_column(sa.String(255), default="")
    company: Mapped[str] = mapped_column(sa.String(255), default="")
    status: Mapped[str] = mapped_column(sa.String(40), default="new")
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True)


PARTY_MODELS: dict[str, type[Account] | type[Contact] | type[Lead]] = {
    "account": Account,
    "contact": Contact,
    "lead": Lead,
}


class CrmChange(Base):
    """The change feed (migration 0006): one row per write of a contact, by database triggers,
    whoever wrote (gateway, CLI, import, plain SQL). `version` only grows; `op` "delete" rows
    are the tombstones. Readers: gateway/crm/sql_feed.py."""

    __tablename__ = "crm_changes"
    __table_args__ = (sa.Index("ix_crm_changes_party", "kind", "party_id"),)
    version: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    party_id: Mapped[int]
    op: Mapped[str] = mapped_column(sa.String(8))  # upsert | delete
    owner: Mapped[str | None] = mapped_column(sa.String(320))
    changed_at: Mapped[float] = mapped_column(sa.Float)  # seconds since the epoch, UTC, as the database's clock said


class PartyEmail(Base):
    __tablename__ = "party_emails"
    __table_args__ = (sa.UniqueConstraint("kind", "party_id", "address_key", name="uq_party_emails_party_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    party_id: Mapped[int]
    address: Mapped[str] = mapped_column(sa.Text)  # as written
    address_key: Mapped[str] = mapped_column(sa.Text, index=True)  # addresses.key(address)


class Blob(Base):
    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)  # last: SQLite writes a big one in pieces (migration 0002)


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (sa.UniqueConstraint("message_id", "content_hash", name="uq_emails_identity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(998))
    content_hash: Mapped[str] = mapped_column(sa.String(128))
    version_of: Mapped[int | None] = mapped_column(sa.ForeignKey("emails.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    from_address: Mapped[str] = mapped_column(sa.Text, default="")
    from_name: Mapped[str] = mapped_column(sa.Text, default="")
    to_addresses: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    cc_addresses: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    in_reply_to: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    references: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    date: Mapped[datetime]
    date_offset_minutes: Mapped[int] = mapped_column(default=0)
    direction: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    html: Mapped[str] = mapped_column(sa.Text, default="")
    raw_sha256: Mapped[str | None] = mapped_column(sa.String(64))  # blobs.sha256 of the .eml
    raw_size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    owner: Mapped[str] = mapped_column(sa.String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailLink(Base):
    __tablename__ = "email_links"
    __table_args__ = (
        sa.UniqueConstraint("email_id", "kind", "party_id", name="uq_email_links"),
        sa.Index("ix_email_links_party", "kind", "party_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(sa.ForeignKey("emails.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    party_id: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailAttachment(Base):
    __tablename__ = "email_attachments"
    __table_args__ = (sa.UniqueConstraint("email_id", "position", name="uq_email_attachments_position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(sa.ForeignKey("emails.id", ondelete="CASCADE"))
    position: Mapped[int]  # order in the mail; the same file may be attached twice
    filename: Mapped[str] = mapped_column(sa.Text, default="")
    content_type: Mapped[str] = mapped_column(sa.Text, default="application/octet-stream")
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)  # blobs.sha256


class Note(Base):
    """A note the gateway put on a record (`add_note`): one per (key, record), whatever the
    replays; `forget` deletes it with its record."""

    __tablename__ = "notes"
    __table_args__ = (
        sa.UniqueConstraint("key", "kind", "party_id", name="uq_notes_key_party"),
        sa.Index("ix_notes_party", "kind", "party_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255))  # NoteData.key, derived by the gateway
    kind: Mapped[str] = mapped_column(sa.String(16))
    party_id: Mapped[int]
    title: Mapped[str] = mapped_column(sa.Text, default="")
    text: Mapped[str] = mapped_column(sa.Text, default="")
    owner: Mapped[str] = mapped_column(sa.String(320), default="")
    message_id: Mapped[str] = mapped_column(sa.Text, default="")  # the mail it was made from
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
