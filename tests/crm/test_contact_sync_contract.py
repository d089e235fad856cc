"""The contact-sync contract (tests/crm/contact_sync_contract.py) on each connector that
offers it: the embedded CRM (SQLite and PostgreSQL), Tryton (a real trytond) and Odoo (its
test double, tests/crm/doubles/odoo_double.py, over both of its protocols)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.crm.odoo import OdooConnector
from gateway.crm.sql import SqlConnector
from gateway.crm.sync import ContactSync, contact_sync
from tests.crm.contact_sync_contract import ContactSyncContract
from tests.crm.doubles.odoo_double import OdooDouble
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


class TestOdooContactSync(ContactSyncContract):
    @pytest.fixture(params=["json2", "jsonrpc"])
    def store(self, request: pytest.FixtureRequest) -> Iterator[ContactSync]:
        with OdooDouble(secret="key") as double:
            for login in ("ann", "bea"):
                double.execute("res.users", "create", None, {"vals_list": [{"login": login, "name": login}]})
            c = OdooConnector(double.url, database="prod", username="bot@example.com", api_key="key", protocol=request.param)
            with closing(c):
                yield contact_sync(c)
