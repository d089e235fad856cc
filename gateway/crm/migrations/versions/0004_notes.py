"""Notes on records: what `add_note` writes, one row per (key, record).

The unique constraint is the connector's idempotency: a replay of the same note inserts with
`ON CONFLICT DO NOTHING` and so never adds a second note to a record.

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
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", "kind", "party_id", name="uq_notes_key_party"),
    )
    op.create_index("ix_notes_party", "notes", ["kind", "party_id"])


def downgrade() -> None:
    op.drop_table("notes")
