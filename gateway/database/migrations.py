"""Alembic migrations run from code (no alembic.ini at run time), for each schema we own.

The embedded CRM and the ledger each have a script folder and their own version table, so
both can live in one database. `upgrade()` brings a database to the newest schema in one
transaction; an older database opened by a newer gateway is upgraded in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class Schema:
    scripts: Path  # the folder with env.py and versions/
    version_table: str
    metadata: sa.MetaData
    pg_lock: int  # advisory lock id: two processes never migrate the same schema at once
    head_revision: str  # the newest script's id (a test checks it against the scripts)

    def config(self, connection: sa.Connection | None = None) -> Any:
        from alembic.config import Config  # alembic costs ~17 MB: only when migrating

        cfg = Config()
        cfg.set_main_option("script_location", str(self.scripts))
        cfg.set_main_option("version_table", self.version_table)
        cfg.attributes["schema"] = self
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def head(self) -> str:
        """The newest revision as the script folder says (reads the scripts)."""
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self.config()).get_current_head()
        assert head is not None
        return head

    def current(self, connection: sa.Connection) -> str | None:
        """The database's revision, read with plain SQL (None: not created yet)."""
        if not sa.inspect(connection).has_table(self.version_table):
            return None
        return connection.execute(sa.text(f"SELECT version_num FROM {self.version_table}")).scalar()

    def upgrade(self, engine: sa.Engine, revision: str = "head") -> None:
        with engine.connect() as conn:
            conn.execution_options(crm_write=True)  # the CRM's SQLite engine: BEGIN IMMEDIATE
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.pg_lock})
                if revision == "head" and self.current(conn) == self.head_revision:
                    return  # the usual case: nothing to do, no scripts to read or run
                from alembic import command
                from alembic.util.exc import CommandError

                try:
                    command.upgrade(self.config(conn), revision)
                except CommandError as exc:  # a revision this version does not know: a newer one wrote it
                    raise SchemaTooNew(str(exc)) from exc


class SchemaTooNew(Exception):
    """The database was written by a newer version of the gateway (a revision not in our scripts)."""


def run_env() -> None:
    """The body of every env.py: migrate on the connection `Schema.upgrade` handed over."""
    from alembic import context

    config = context.config
    schema: Schema = config.attributes["schema"]
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        version_table=schema.version_table,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
