"""Gateways sharing one ledger: a heartbeat row per gateway, a lease row per mailbox, and an
index on a copy's state for the sweep of copies handed over to their mailbox's holder.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateways",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_table(
        "leases",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("account", sa.String(320), primary_key=True),
        sa.Column("owner", sa.String(100)),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True)),
        sa.Column("wanted_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(100)),
        sa.Column("requested_until", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_locations_state", "locations", ["state"])


def downgrade() -> None:
    op.drop_index("ix_locations_state", "locations")
    op.drop_table("leases")
    op.drop_table("gateways")
