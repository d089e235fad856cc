"""A real Radicale for the CardDAV client's tests (tests/pimsync/radicale_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pimsync.radicale_server import Radicale


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with Radicale(tmp_path_factory.mktemp("radicale"), ["dav1", "dav2", "dav3", "dav4"]) as server:
        yield server
