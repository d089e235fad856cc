"""Alembic migrations of the embedded CRM, run from code (no alembic.ini at run time).

`upgrade(connection)` brings a database to the newest schema; an older database opened by a
newer gateway is upgraded in place. The scripts live in `versions/`; their revision ids are
short numbers ("0001", "0002", …) so their order is plain to see.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.crm.sql_models import VERSION_TABLE

HERE = Path(__file__).resolve().parent
_PG_LOCK = 0x63726D31  # "crm1": advisory lock id so two processes never migrate at once


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`, in one transaction."""
    with engine.connect() as conn:
        conn.execution_options(crm_write=True)  # SQLite: BEGIN IMMEDIATE, one migrator at a time
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            if revision == "head" and current(conn) == head():
                return  # the usual case: nothing to do, no scripts to run
            command.upgrade(alembic_config(conn), revision)
