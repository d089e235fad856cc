"""Alembic migrations of the ledger (see gateway/database/migrations.py)."""

from __future__ import annotations

from pathlib import Path

from gateway.database.migrations import Schema
from gateway.ledger.schema import metadata

SCHEMA = Schema(
    Path(__file__).resolve().parent, "ledger_schema_version", metadata, pg_lock=0x6C656431, head_revision="0005"
)  # "led1"
