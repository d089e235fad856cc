"""The contact-sync contract (tests/crm/contact_sync_contract.py) on each connector that
offers it: the embedded CRM (SQLite and PostgreSQL) and Tryton (a real trytond)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.crm.sql import SqlConnector
from gateway.crm.sync import ContactSync, contact_sync
from tests.crm.contact_sync_contract import ContactSyncContract
from tests.crm.sql_backends import BACKENDS, database_url
from tests.crm.test_tryton_contract import connector_for
from tests.crm.tryton_server import TrytonServer


class TestSqlContactSync(ContactSyncContract):
    @pytest.fixture(params=BACKENDS)
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContactSync]:
        with database_url(request.param, tmp_path) as url, closing(SqlConnector(url)) as c:
            yield contact_sync(c)


class TestTrytonContactSync(ContactSyncContract):
    @pytest.fixture
    def store(self, tryton: TrytonServer) -> Iterator[ContactSync]:
        c = connector_for(tryton)
        try:
            yield contact_sync(c)
        finally:
            c.close()
