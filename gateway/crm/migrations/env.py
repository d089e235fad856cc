"""Alembic environment for the embedded CRM: runs on the connection `upgrade()` hands over."""

from __future__ import annotations

from alembic import context

from gateway.crm.sql_models import VERSION_TABLE, Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # `alembic -x` style use from a shell: build an engine from the URL
    import sqlalchemy as sa

    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
