"""Shared pytest fixtures: a gateway home in a temporary folder (tests/fixtures.py's `Home`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.fixtures import Home

# Property tests explore new examples on a developer's machine; under CI (CI=true) they run a
# fixed sequence, so a red run is one anyone can repeat. Found counterexamples become @example.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


@pytest.fixture
def make_home(tmp_path: Path):
    made = {"n": 0}

    def make(**kw: Any) -> Home:
        made["n"] += 1
        root = tmp_path / f"home{made['n']}"
        root.mkdir()
        return Home(root, **kw)

    return make
