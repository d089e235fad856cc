"""The first schema of the embedded CRM: parties, their addresses, emails, links, blobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _party_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("created_by_gateway", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "accounts",
        *_party_columns(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
    )
    op.create_index("ix_accounts_domain", "accounts", ["domain"])
    op.create_table(
        "contacts",
        *_party_columns(),
        sa.Column("first_name", sa.String(255), nullable=False),
        sa.Column("last_name", sa.String(255), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_contacts_account_id", "contacts", ["account_id"])
    op.create_table(
        "leads",
        *_party_columns(),
        sa.Column("first_name", sa.String(255), nullable=False),
        sa.Column("last_name", sa.String(255), nullable=False),
        sa.Column("company", sa.String(255), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_leads_account_id", "leads", ["account_id"])
    op.create_table(
        "party_emails",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("address_key", sa.Text, nullable=False),
        sa.UniqueConstraint("kind", "party_id", "address_key", name="uq_party_emails_party_key"),
    )
    op.create_index("ix_party_emails_address_key", "party_emails", ["address_key"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "emails",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("version_of", sa.Integer, sa.ForeignKey("emails.id", ondelete="SET NULL"), nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("from_address", sa.Text, nullable=False),
        sa.Column("from_name", sa.Text, nullable=False),
        sa.Column("to_addresses", sa.JSON, nullable=False),
        sa.Column("cc_addresses", sa.JSON, nullable=False),
        sa.Column("in_reply_to", sa.JSON, nullable=False),
        sa.Column("references", sa.JSON, nullable=False),
        sa.Column("date", TS, nullable=False),
        sa.Column("date_offset_minutes", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("raw_sha256", sa.String(64), nullable=True),
        sa.Column("raw_size", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("message_id", "content_hash", name="uq_emails_identity"),
    )
    op.create_table(
        "email_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email_id", sa.Integer, sa.ForeignKey("emails.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("email_id", "kind", "party_id", name="uq_email_links"),
    )
    op.create_index("ix_email_links_party", "email_links", ["kind", "party_id"])
    op.create_table(
        "email_attachments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email_id", sa.Integer, sa.ForeignKey("emails.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.UniqueConstraint("email_id", "position", name="uq_email_attachments_position"),
    )
    op.create_index("ix_email_attachments_sha256", "email_attachments", ["sha256"])


def downgrade() -> None:
    for table in ("email_attachments", "email_links", "emails", "blobs", "party_emails", "leads", "contacts", "accounts"):
        op.drop_table(table)
