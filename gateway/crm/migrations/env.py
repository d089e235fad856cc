"""Alembic environment of the embedded CRM."""

from gateway.database.migrations import run_env

run_env()
