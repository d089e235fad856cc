"""Alembic environment of the embedded CRM."""

from gateway.migrations import run_env

run_env()
