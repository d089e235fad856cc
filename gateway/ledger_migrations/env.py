"""Alembic environment of the ledger."""

from gateway.migrations import run_env

run_env()
