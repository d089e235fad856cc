"""Fixtures the connector tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.connectors.tryton_server import TrytonServer, session_template


@pytest.fixture
def tryton(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[TrytonServer]:
    """A live trytond on a copy of this run's template database (built once, ~15 s)."""
    server = session_template(tmp_path_factory).server(tmp_path / "tryton")
    try:
        yield server
    finally:
        server.stop()
