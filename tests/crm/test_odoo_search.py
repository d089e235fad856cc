"""Record search and who may pick a record, with Odoo as the CRM (through the double of its
external API): `crm-gateway crm search` and `GET /api/v1/crm/search`, and a person refused a
record whose salesperson is somebody else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.crm.base import PartyData
from gateway.crm.odoo import OdooConnector
from tests.crm.doubles.odoo_double import OdooDouble
from tests.fixtures import Home
from tests.web.fixtures import review_in_each, sign_in, web, web_home

KEY = "s3cret-api-key"


@pytest.fixture(params=["json2", "jsonrpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def double() -> Iterator[OdooDouble]:
    with OdooDouble(secret=KEY) as d:
        d.execute("res.users", "create", None, {"vals_list": [{"login": "bob@example.com", "name": "Bob"}]})
        yield d


@pytest.fixture
def records(double: OdooDouble) -> dict[str, str]:
    """Ann (me's), Bo's lead (bob's), Acme and a "100%" company with no salesperson (shared)."""
    with closing(OdooConnector(double.url, database="prod", username="bot@example.com", api_key=KEY)) as c:
        return {
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
            "pct": c.create("account", PartyData(kind="account", name="Widgets 100% Ltd", domain="w.example")).label(),
            "pct0": c.create("account", PartyData(kind="account", name="Widgets 1000 Ltd", domain="w0.example")).label(),
        }


@pytest.fixture
def home(tmp_path: Path, double: OdooDouble, protocol: str) -> Home:
    crm = {"backend": "odoo", "url": double.url, "database": "prod", "username": "bot@example.com", "protocol": protocol}
    crm["api_key" if protocol == "json2" else "password"] = KEY
    return web_home(tmp_path, crm=crm)


def test_the_command_line_finds_odoo_records_by_name_address_and_website(home: Home, records: dict[str, str]) -> None:
    out = home.cli("crm", "search", "pump", check=True).stdout.splitlines()
    assert out == [f"{records['lead']}  Bo Pump  bo@x.org", f"{records['acme']}  Acme Pumps  acme.example"]
    by_address = home.cli("crm", "search", "acme.example", check=True).stdout
    assert f"{records['ann']}  Ann Lee  ann@acme.example" in by_address and records["acme"] in by_address
    assert home.cli("crm", "search", "acme", "--kind", "account", check=True).stdout.splitlines() == [
        f"{records['acme']}  Acme Pumps  acme.example"
    ]
    # a % in the text is a percent sign, not Odoo's wildcard
    assert home.cli("crm", "search", "100%", check=True).stdout.splitlines() == [f"{records['pct']}  Widgets 100% Ltd  w.example"]


def test_the_api_shows_each_person_the_records_of_their_salesperson_and_the_unassigned(
    home: Home, records: dict[str, str]
) -> None:
    def found(client, **params) -> list[str]:
        res = client.get("/api/v1/crm/search", params=params)
        assert res.status_code == 200, res.text
        return [r["record"] for r in res.json()["records"]]

    with web(home) as client:
        sign_in(client, "root")
        assert found(client, q="pump") == [records["lead"], records["acme"]]
        (hit,) = client.get("/api/v1/crm/search", params={"q": "ann lee"}).json()["records"]
        assert hit["record"] == records["ann"] and hit["emails"] == ["ann@acme.example"] and hit["owner"] == "me@example.com"
    with web(home) as client:
        token = sign_in(client, "me")
        assert found(client, q="pump") == [records["acme"]]  # Bo's lead is bob's
        assert found(client, q="ann") == [records["ann"]]
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
            "/api/v1/link", json={"record": "contact:99999", "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert missing.status_code == 404 and "no contact with id 99999" in missing.json()["error"]
    with web(home) as client:
        token = sign_in(client, "bob")
        assert found(client, q="ann") == []
        assert found(client, q="pump") == [records["lead"], records["acme"]]
        refused = client.post(
            "/api/v1/link", json={"record": records["ann"], "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 404  # another's record: as if it were not there


def test_a_person_resolves_review_to_a_shared_partner_and_is_refused_anothers_lead(
    home: Home, double: OdooDouble, records: dict[str, str]
) -> None:
    review_in_each(home)  # item 1 in me's mailbox, item 2 in bob's
    with web(home) as client:
        h = {"X-CSRF-Token": sign_in(client, "me")}
        refused = client.post("/api/v1/review/1/resolve", json={"record": records["lead"]}, headers=h)
        assert refused.status_code == 404 and refused.json() == {
            "error": "no {} with id {} in the CRM".format(*records["lead"].split(":"))
        }  # as if it were not there
        ok = client.post("/api/v1/review/1/resolve", json={"record": records["acme"]}, headers=h)
        assert ok.status_code == 200, ok.text
    posted = [
        (m["model"], m["res_id"]) for m in double.tables["mail.message"].values() if m["message_id"] == "<r1@nowhere.example>"
    ]
    assert posted == [("res.partner", int(records["acme"].split(":")[1]))]
