"""Fixtures for the IMAP tests: a real Dovecot (unprivileged, 127.0.0.1, a free port) and a
gateway home whose source is that Dovecot (helpers in fixtures.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mailboxes.imap.dovecot import Dovecot, available
from tests.mailboxes.imap.fixtures import MANY, MASTER, ImapHome


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    # Skipped here, not for the whole folder: the IMAP tests without a server run anywhere.
    if not available():
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; `make test` installs it)")
    d = Dovecot({"alice": "secret", "bob": "hunter2"})
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def many_dovecot() -> Iterator[Dovecot]:
    """A Dovecot with 200 users (u000 … u199, password "pw") and a master user admin/masterpw,
    set up for hundreds of connections at once."""
    if not available():
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; `make test` installs it)")
    d = Dovecot({f"u{i:03d}": "pw" for i in range(MANY)}, master=MASTER, many=True)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def imap_home(tmp_path: Path, dovecot: Dovecot) -> Iterator[Callable[..., ImapHome]]:
    made: list[ImapHome] = []

    def make(**kw: Any) -> ImapHome:
        root = tmp_path / f"home{len(made) + 1}"
        root.mkdir()
        h = ImapHome(root, kw.pop("server", dovecot), **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    logging.getLogger("gateway").setLevel(logging.INFO)
