"""The contact sync's links, journal, conflicts and cursors (gateway/ledger/pim.py).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pim_links",
        sa.Column("book", sa.String(100), primary_key=True),
        sa.Column("href", sa.String(1000), primary_key=True),
        sa.Column("uid", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("crm_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("etag", sa.Text, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("crm_born", sa.String(40), nullable=False),
        sa.Column("card_seen_etag", sa.Text, nullable=False),
        sa.Column("card_seen_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("book", "kind", "crm_id", name="uq_pim_links_record"),
    )
    op.create_table(
        "pim_journal",
        sa.Column("book", sa.String(100), primary_key=True),
        sa.Column("action", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(1000), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("intent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "pim_conflicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("book", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("crm_id", sa.String(100), nullable=False),
        sa.Column("href", sa.String(1000), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("crm_value", sa.Text, nullable=False),
        sa.Column("card_value", sa.Text, nullable=False),
        sa.Column("winner", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pim_conflicts_book", "pim_conflicts", ["book"])
    op.create_table(
        "pim_cursors",
        sa.Column("book", sa.String(100), primary_key=True),
        sa.Column("crm_version", sa.BigInteger, nullable=False),
        sa.Column("sync_token", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in ("pim_cursors", "pim_conflicts", "pim_journal", "pim_links"):
        op.drop_table(name)
