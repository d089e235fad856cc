"""Fixtures the connector tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crm.tryton_server import TrytonServer, session_template

# The first test that wants a trytond builds the run's template database (trytond-admin
# installs party and sale_opportunity): ~15 s idle, over 5 minutes on a loaded machine,
# and pytest-timeout counts it against that test.
TRYTON_TEST_TIMEOUT = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tryton" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(TRYTON_TEST_TIMEOUT))


@pytest.fixture
def tryton(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[TrytonServer]:
    """A live trytond on a copy of this run's template database (built once, ~15 s)."""
    server = session_template(tmp_path_factory).server(tmp_path / "tryton")
    try:
        yield server
    finally:
        server.stop()
