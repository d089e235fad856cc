"""Record search and who may pick a record, with vtiger / vtenext as the CRM (through the double
of its webservice): `crm-gateway crm search` and `GET /api/v1/crm/search`, and a person refused
a record assigned to somebody else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.crm.base import PartyData
from gateway.crm.vtiger import VtigerConnector
from tests.crm.doubles.vtiger_double import VtigerDouble
from tests.fixtures import Home
from tests.web.fixtures import sign_in, web, web_home

KEY = "K3yK3yK3y"


@pytest.fixture(params=["vtiger", "vtenext"])
def double(request: pytest.FixtureRequest) -> Iterator[VtigerDouble]:
    with VtigerDouble(dialect=request.param, access_key=KEY) as d:
        d.state.records["19x7"] = {"id": "19x7", "user_name": "bob", "email1": "bob@example.com"}
        yield d


@pytest.fixture
def records(double: VtigerDouble) -> dict[str, str]:
    """Ann (me's), Bo's lead (bob's), Acme (the gateway's user's: shared), 105 Pumpkins of
    sales's and after them Cy Pumpe (me's), found only on the second page of 100 rows."""
    with closing(VtigerConnector(double.url, "admin", KEY, dialect=double.dialect)) as c:
        out = {
            "ann": c.create(
                "contact",
                PartyData(
                    kind="contact", first_name="Ann", last_name="Lee", emails=("ann@acme.example",), owner="me@example.com"
                ),
            ).label(),
            "lead": c.create(
                "lead",
                PartyData(kind="lead", first_name="Bo", last_name="Pump", emails=("bo@x.org",), owner="bob@example.com"),
            ).label(),
            "acme": c.create("account", PartyData(kind="account", name="Acme Pumps", domain="acme.example")).label(),
        }
        for i in range(105):
            double.state.records[f"12x{5000 + i}"] = {
                "id": f"12x{5000 + i}",
                "firstname": "",
                "lastname": f"Pumpkin {i}",
                "assigned_user_id": "19x6",
            }
        double.state.records["12x6000"] = {"id": "12x6000", "firstname": "Cy", "lastname": "Pumpe", "assigned_user_id": "19x5"}
        out["cy"] = "contact:12x6000"
        return out


@pytest.fixture
def home(tmp_path: Path, double: VtigerDouble) -> Home:
    crm = {"backend": "vtiger", "url": double.url, "username": "admin", "access_key": KEY, "dialect": double.dialect}
    return web_home(tmp_path, crm=crm)


def test_the_command_line_finds_vtiger_records_by_name_address_and_website(home: Home, records: dict[str, str]) -> None:
    out = home.cli("crm", "search", "pump", "--kind", "lead", check=True).stdout.splitlines()
    assert out == [f"{records['lead']}  Bo Pump  bo@x.org"]
    assert home.cli("crm", "search", "pumps", check=True).stdout.splitlines() == [f"{records['acme']}  Acme Pumps  acme.example"]
    by_address = home.cli("crm", "search", "acme.example", check=True).stdout
    assert f"{records['ann']}  Ann Lee  ann@acme.example" in by_address and records["acme"] in by_address
    assert home.cli("crm", "search", "ann lee", check=True).stdout.splitlines() == [
        f"{records['ann']}  Ann Lee  ann@acme.example"
    ]
    pumpkins = home.cli("crm", "search", "pumpkin", "--kind", "contact", "--json", check=True).stdout
    assert pumpkins.count('"record"') == 50  # the search's bound, of 105


def test_the_api_shows_each_person_their_records_and_the_gateways(home: Home, records: dict[str, str]) -> None:
    def found(client, **params) -> list[str]:
        res = client.get("/api/v1/crm/search", params=params)
        assert res.status_code == 200, res.text
        return [r["record"] for r in res.json()["records"]]

    with web(home) as client:
        sign_in(client, "root")
        (hit,) = client.get("/api/v1/crm/search", params={"q": "bo@x.org"}).json()["records"]
        assert hit == {
            "kind": "lead",
            "id": records["lead"].split(":")[1],
            "name": "Bo Pump",
            "record": records["lead"],
            "emails": ["bo@x.org"],
            "domain": "",
            "owner": "bob@example.com",
        }
    with web(home) as client:
        token = sign_in(client, "me")
        assert found(client, q="pump") == [records["cy"], records["acme"]]  # not bob's lead, nor sales's Pumpkins
        refused = client.post(
            "/api/v1/link", json={"record": records["lead"], "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 404 and refused.json() == {
            "error": "no {} with id {} in the CRM".format(*records["lead"].split(":"))
        }  # as if it were not there
        shared = client.post(
            "/api/v1/link", json={"record": records["acme"], "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert shared.status_code == 404 and "no message" in shared.json()["error"]  # the record passed
        missing = client.post(
            "/api/v1/link", json={"record": "contact:12x99999", "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert missing.status_code == 404 and "no contact with id 12x99999" in missing.json()["error"]
    with web(home) as client:
        token = sign_in(client, "bob")
        assert found(client, q="ann") == []
        assert found(client, q="pump", kind="lead") == [records["lead"]]
        refused = client.post(
            "/api/v1/link", json={"record": records["ann"], "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 404  # another's record: as if it were not there
