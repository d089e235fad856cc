"""One Radicale for the module's tests; each test takes its own users (and so address books)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pimsync.radicale_server import Radicale

USERS = [f"u{i}" for i in range(200)]
_next = itertools.count()


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    root: Path = tmp_path_factory.mktemp("radicale")
    with Radicale(root, USERS) as server:
        yield server


@pytest.fixture
def users() -> Iterator[tuple[str, str]]:
    """Two fresh users of the shared server: (alice, bob)."""
    n = next(_next)
    yield USERS[2 * n], USERS[2 * n + 1]
