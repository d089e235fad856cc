r"""Address keys compare canonical forms: a quoted local part is unquoted.

`party_emails.address_key` is `gateway.message.addresses.key(address)`, which now unquotes a quoted
local part (`"o'neil\\q"@x` and `o'neil\q@x` are one person). Only rows whose address holds
a quote can change, so only those are read and rewritten. Where one record held both
spellings, the second row would repeat the first's key: it is dropped (the record keeps the
address once, as first written).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.message import addresses

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_pe = sa.table(
    "party_emails",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("party_id", sa.Integer),
    sa.column("address", sa.Text),
    sa.column("address_key", sa.Text),
)


def upgrade() -> None:
    conn = op.get_bind()
    quoted = conn.execute(
        sa.select(_pe.c.id, _pe.c.kind, _pe.c.party_id, _pe.c.address, _pe.c.address_key)
        .where(_pe.c.address.contains('"', autoescape=True))
        .order_by(_pe.c.id)
    ).all()
    for row in quoted:
        key = addresses.key(row.address)
        if key == row.address_key:
            continue
        taken = conn.execute(
            sa.select(_pe.c.id).where(_pe.c.kind == row.kind, _pe.c.party_id == row.party_id, _pe.c.address_key == key)
        ).first()
        if taken is not None:
            conn.execute(sa.delete(_pe).where(_pe.c.id == row.id))
        else:
            conn.execute(sa.update(_pe).where(_pe.c.id == row.id).values(address_key=key))


def downgrade() -> None:
    pass  # the old keys were a bug to undo, not a schema
