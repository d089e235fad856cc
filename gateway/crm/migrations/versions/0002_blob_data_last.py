"""Blobs keep their bytes in the last column, so SQLite can store a big one in pieces.

SQLite builds a new row whole in memory unless its blob is the row's last column: a 20 MB
attachment bound as a parameter cost about 40 MB at its peak (the driver's copy and the
row's). With `data` last, the gateway inserts a zeroblob of the right size and writes the
bytes in 1 MB pieces (incremental blob I/O). SQLite cannot move a column, so the table is
rebuilt: every stored blob is copied once, in this one transaction. On PostgreSQL the column
order changes nothing: it is left as it is.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE blobs_0002 (sha256 VARCHAR(64) NOT NULL PRIMARY KEY, size BIGINT NOT NULL, "
        "created_at DATETIME NOT NULL, data BLOB NOT NULL)"
    )
    op.execute("INSERT INTO blobs_0002 (sha256, size, created_at, data) SELECT sha256, size, created_at, data FROM blobs")
    op.execute("DROP TABLE blobs")
    op.execute("ALTER TABLE blobs_0002 RENAME TO blobs")


def downgrade() -> None:
    pass  # the column order is no schema difference a downgrade needs to undo
