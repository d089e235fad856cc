"""Record search and who may pick a record, with a real trytond as the CRM: `crm-gateway crm
search` and `GET /api/v1/crm/search`. Tryton gives a party no owner: every record is shared,
unless `crm.record_visibility: admins`, when a person is refused them."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.crm.base import PartyData
from gateway.crm.tryton import TrytonConnector
from gateway.crm.tryton_rpc import TrytonRpc
from tests.crm.tryton_server import TrytonServer
from tests.web.fixtures import sign_in, web, web_home


def _crm(server: TrytonServer, **more: Any) -> dict[str, Any]:
    return {
        "backend": "tryton",
        "url": server.url,
        "database": server.database,
        "username": server.username,
        "password": server.password,
    } | more


@pytest.fixture
def records(tryton: TrytonServer) -> dict[str, str]:
    """Ann Lee (contact), Acme Pumps (account), Bo Pump (lead), two look-alike companies."""
    rpc = TrytonRpc(tryton.url, tryton.database, tryton.username, tryton.password)
    with closing(TrytonConnector(rpc)) as c:
        return {
            "ann": c.create(
                "contact", PartyData(kind="contact", first_name="Ann", last_name="Lee", emails=("ann@acme.example",))
            ).label(),
            "acme": c.create("account", PartyData(kind="account", name="Acme Pumps", domain="acme.example")).label(),
            "lead": c.create("lead", PartyData(kind="lead", first_name="Bo", last_name="Pump", emails=("bo@x.org",))).label(),
            "pct": c.create("account", PartyData(kind="account", name="Widgets 100% Ltd", domain="w.example")).label(),
            "pct0": c.create("account", PartyData(kind="account", name="Widgets 1000 Ltd", domain="w0.example")).label(),
        }


def test_the_command_line_finds_parties_and_leads_by_name_address_and_website(
    tmp_path: Path, tryton: TrytonServer, records: dict[str, str]
) -> None:
    home = web_home(tmp_path, crm=_crm(tryton))

    def search(*args: str) -> list[str]:
        return home.cli("crm", "search", *args, check=True).stdout.splitlines()

    assert search("pump") == [f"{records['lead']}  Bo Pump  bo@x.org", f"{records['acme']}  Acme Pumps  acme.example"]
    assert search("acme.example") == [
        f"{records['ann']}  Ann Lee  ann@acme.example",
        f"{records['acme']}  Acme Pumps  acme.example",
    ]
    assert search("ANN LEE") == [f"{records['ann']}  Ann Lee  ann@acme.example"]
    assert search("bo@x.org", "--kind", "contact") == []  # Bo's party is a lead while the opportunity is one
    assert search("100%") == [f"{records['pct']}  Widgets 100% Ltd  w.example"]  # % as typed, no wildcard


def test_every_party_is_shared_unless_configured_for_admins_only(
    tmp_path: Path, tryton: TrytonServer, records: dict[str, str]
) -> None:
    def found(client: Any, q: str) -> list[str]:
        res = client.get("/api/v1/crm/search", params={"q": q})
        assert res.status_code == 200, res.text
        return [r["record"] for r in res.json()["records"]]

    def link(client: Any, token: str, record: str) -> Any:
        return client.post("/api/v1/link", json={"record": record, "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token})

    shared = web_home(tmp_path / "shared", crm=_crm(tryton))
    with web(shared) as client:
        token = sign_in(client, "me")
        assert found(client, "pump") == [records["lead"], records["acme"]]
        res = link(client, token, records["lead"])
        assert res.status_code == 404 and "no message" in res.json()["error"]  # the record passed
        missing = link(client, token, "contact:99999")
        assert missing.status_code == 404 and "no contact with id 99999" in missing.json()["error"]

    admins = web_home(tmp_path / "admins", crm=_crm(tryton, record_visibility="admins"))
    with web(admins) as client:
        token = sign_in(client, "me")
        assert found(client, "pump") == []
        refused = link(client, token, records["acme"])
        assert refused.status_code == 404 and refused.json() == {
            "error": "no {} with id {} in the CRM".format(*records["acme"].split(":"))
        }  # as if it were not there
    with web(admins) as client:
        sign_in(client, "root")
        assert found(client, "pump") == [records["lead"], records["acme"]]
