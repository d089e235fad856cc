"""`GET /api/v1/crm/search`: records by name, address, domain and kind, those the asker may see."""

from __future__ import annotations

from gateway.crm.base import PartyData
from tests.web.fixtures import crm, sign_in, web, web_home


def test_search_by_name_address_domain_and_kind(tmp_path):
    home = web_home(tmp_path)
    c = crm(home)
    try:
        acme = c.create("account", PartyData(kind="account", name="Acme Pumps", domain="acme.example")).id
        ann = c.create("contact", PartyData(kind="contact", first_name="Ann", last_name="Lee", emails=("ann@acme.example",))).id
        lead = c.create(
            "lead", PartyData(kind="lead", first_name="Bo", last_name="Pump", emails=("bo@x.org",), owner="bob@example.com")
        ).id
    finally:
        c.close()
    with web(home) as client:
        sign_in(client, "root")

        def found(**params):
            res = client.get("/api/v1/crm/search", params=params)
            assert res.status_code == 200, res.text
            return [r["record"] for r in res.json()["records"]]

        assert found(q="ann lee") == [f"contact:{ann}"]
        assert sorted(found(q="acme.example")) == sorted([f"contact:{ann}", f"account:{acme}"])  # address, domain
        assert found(q="acme", kind="account") == [f"account:{acme}"]
        assert sorted(found(q="pump")) == sorted([f"account:{acme}", f"lead:{lead}"])
        (hit,) = client.get("/api/v1/crm/search", params={"q": "bo@x.org"}).json()["records"]
        assert hit == {
            "kind": "lead",
            "id": lead,
            "name": "Bo Pump",
            "record": f"lead:{lead}",
            "emails": ["bo@x.org"],
            "domain": "",
            "owner": "bob@example.com",
        }
        short = client.get("/api/v1/crm/search", params={"q": "a"})
        assert short.status_code == 400 and "at least 2 characters" in short.json()["error"]
        assert client.get("/api/v1/crm/search", params={"q": "acme", "kind": "deal"}).status_code == 400
    with web(home) as client:
        sign_in(client, "me")  # bob's lead is not hers; the shared records are everyone's
        res = client.get("/api/v1/crm/search", params={"q": "pump"}).json()["records"]
        assert [r["record"] for r in res] == [f"account:{acme}"]


def test_the_command_line_searches_and_links_with_the_same_functions(tmp_path):
    from tests.mail import make_mail

    home = web_home(tmp_path)
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", message_id="<cli@x.org>"))
    home.run_once()
    c = crm(home)
    try:
        acme = c.create("account", PartyData(kind="account", name="Acme Pumps", domain="acme.example")).id
    finally:
        c.close()
    found = home.cli("crm", "search", "pumps", check=True).stdout
    assert f"account:{acme}  Acme Pumps  acme.example" in found
    for _ in range(2):
        res = home.cli("link", "<cli@x.org>", "--to", f"account:{acme}")
        assert res.returncode == 0, res.stderr
        assert f"on account:{acme}" in res.stdout
    (email,) = home.dump()["emails"]
    assert email["links"].count({"kind": "account", "id": int(acme)}) == 1
    missing = home.cli("link", "<nope@x.org>", "--to", f"account:{acme}")
    assert missing.returncode == 1 and "no message with Message-ID <nope@x.org>" in missing.stderr
