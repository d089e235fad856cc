"""Alembic environment of the ledger."""

from gateway.database.migrations import run_env

run_env()
