"""The connector contract against the embedded CRM (`gateway.crm.sql`), on SQLite and on a
real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.crm.base import PartyRef
from gateway.crm.sql import SqlConnector
from tests.crm.contract import ConnectorContract, StoredEmail, StoredFile, StoredNote, StoredParty
from tests.crm.fixtures import sql_connector
from tests.crm.sql_backends import BACKENDS


class SqlInspector:
    """Reads back through the connector's own `dump()` (what `crm dump --json` prints)."""

    def __init__(self, connector: SqlConnector) -> None:
        self.connector = connector

    def emails(self, message_id: str) -> list[StoredEmail]:
        return [
            StoredEmail(
                id=str(e["id"]),
                message_id=e["message_id"],
                subject=e["subject"],
                from_address=e["from"],
                links=frozenset((link["kind"], str(link["id"])) for link in e["links"]),
                attachments=tuple(StoredFile(**a) for a in e["attachments"]),
            )
            for e in self.connector.dump()["emails"]
            if e["message_id"] == message_id
        ]

    def party(self, ref: PartyRef) -> StoredParty | None:
        p = self.connector.get_party(ref)
        return None if p is None else StoredParty(ref.kind, str(p["id"]), p["owner"], frozenset(p["emails"]))

    def notes(self, ref: PartyRef) -> list[StoredNote]:
        return [StoredNote(str(n["id"]), n["title"], n["text"]) for n in self.connector.notes(ref)]


class TestSqlContract(ConnectorContract):
    @pytest.fixture(params=BACKENDS)
    def connector(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlConnector]:
        with sql_connector(request.param, tmp_path) as c:
            yield c

    @pytest.fixture
    def inspect(self, connector: SqlConnector) -> SqlInspector:
        return SqlInspector(connector)
