"""A sync conflict's resolution: a person keeps the CRM's or the mailbox's value (the
console, the API, `pimsync conflicts --resolve`), and the next round applies it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pim_conflicts") as t:
        t.add_column(sa.Column("state", sa.String(12), nullable=False, server_default="open"))
        t.add_column(sa.Column("kept", sa.String(8)))
        t.add_column(sa.Column("resolved_by", sa.String(320)))
        t.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True)))
    op.create_index("ix_pim_conflicts_state", "pim_conflicts", ["state"])


def downgrade() -> None:
    op.drop_index("ix_pim_conflicts_state", "pim_conflicts")
    with op.batch_alter_table("pim_conflicts") as t:
        for name in ("resolved_at", "resolved_by", "kept", "state"):
            t.drop_column(name)
