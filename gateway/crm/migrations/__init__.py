"""Alembic migrations of the embedded CRM (see gateway/database/migrations.py). Revision ids are short
numbers ("0001", "0002", …) so their order is plain to see."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from gateway.crm.sql_models import VERSION_TABLE, Base
from gateway.database.migrations import Schema

SCHEMA = Schema(Path(__file__).resolve().parent, VERSION_TABLE, Base.metadata, pg_lock=0x63726D31, head_revision="0006")  # "crm1"


def head() -> str:
    return SCHEMA.head()


def current(connection: sa.Connection) -> str | None:
    return SCHEMA.current(connection)


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    SCHEMA.upgrade(engine, revision)
