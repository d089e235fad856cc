"""The core issue's scenarios again, end to end, with a real trytond as the CRM: mail dropped
into a Maildir, `Gateway.run_once()`, and the records read back from Tryton over JSON-RPC —
the vtiger folders (rules/folders.yaml) and webCRM's "CRM sync" (rules/crm-sync.yaml).
No test double: the config's `crm.backend: tryton` points at the server, the password
comes from the environment as an operator would set it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.crm import tryton_mail as tm
from gateway.crm.base import PartyData
from gateway.crm.tryton import PARTY, TrytonConnector
from gateway.crm.tryton_rpc import TrytonRpc
from gateway.errors import Permanent, Retryable
from tests.crm.contract import CLIENT_TIMEOUT
from tests.crm.tryton_server import Rpc, TrytonServer, free_port
from tests.fixtures import Home
from tests.mail import make_mail

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
CSV = b"name,amount\nwidgets,12\n"


@pytest.fixture
def thome(tmp_path: Path, tryton: TrytonServer, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("TRYTON_PASSWORD", tryton.password)
    root = tmp_path / "home"
    root.mkdir()
    crm = {
        "backend": "tryton",
        "url": tryton.url,
        "database": tryton.database,
        "username": tryton.username,
        "password": "${TRYTON_PASSWORD}",
    }
    return Home(root, extra={"crm": crm})


def _connector(server: TrytonServer) -> TrytonConnector:
    return TrytonConnector(TrytonRpc(server.url, server.database, server.username, server.password))


class Crm:
    """What a Tryton user sees: parties, their emails and categories, opportunities, attachments."""

    def __init__(self, server: TrytonServer) -> None:
        self.rpc: Rpc = server.rpc()

    def parties(self) -> list[dict[str, Any]]:
        rows = self.rpc.call(
            "model.party.party.search_read",
            [("name", "!=", "Example Ltd")],
            0,
            None,
            [("id", "ASC")],
            ["name", "categories.name", "contact_mechanisms"],
        )
        for r in rows:
            mechs = self.rpc.call("model.party.contact_mechanism.read", r["contact_mechanisms"], ["type", "value"])
            r["emails"] = [m["value"] for m in mechs if m["type"] == "email"]
            r["websites"] = [m["value"] for m in mechs if m["type"] == "website"]
            r["cats"] = sorted(c["name"] for c in r["categories."])
        return rows

    def opportunities(self) -> list[dict[str, Any]]:
        return self.rpc.call(
            "model.sale.opportunity.search_read", [], 0, None, [("id", "ASC")], ["party", "state", "description"]
        )

    def attachments(self, resource: str) -> list[tuple[str, int, str]]:
        rows = self.rpc.call(
            "model.ir.attachment.search_read",
            [("resource", "=", resource)],
            0,
            None,
            [("id", "ASC")],
            ["name", "data", "description"],
        )
        return sorted((r["name"], len(r["data"]), (tm.parse(r["description"]) or tm.Marker("", "", "?")).part) for r in rows)

    def files(self, resource: str) -> dict[str, bytes]:
        rows = self.rpc.call("model.ir.attachment.search_read", [("resource", "=", resource)], 0, None, None, ["name", "data"])
        return {r["name"]: r["data"] for r in rows}

    def notes(self, resource: str) -> list[str]:
        return [
            n["message"]
            for n in self.rpc.call("model.ir.note.search_read", [("resource", "=", resource)], 0, None, None, ["message"])
        ]


def test_unknown_sender_in_vleads_becomes_an_opportunity_with_the_mail_and_attachments(thome: Home, tryton: TrytonServer) -> None:
    raw = make_mail(
        sender='"Bob Ray" <bob@x.org>',
        subject="Quote please",
        attachments=[("quote.pdf", "application/pdf", PDF), ("items.csv", "text/csv", CSV)],
    )
    thome.drop("VLeads", raw)
    assert thome.run_once() == {"done": 1}
    crm = Crm(tryton)
    [party] = crm.parties()
    assert (party["name"], party["emails"]) == ("Bob Ray", ["bob@x.org"])
    assert party["cats"] == ["CRM by mail gateway", "CRM lead"]
    [opp] = crm.opportunities()
    assert (opp["party"], opp["state"]) == (party["id"], "lead")
    resource = f"sale.opportunity,{opp['id']}"
    names = crm.attachments(resource)
    assert [(n, p) for n, _, p in names] == [("2026-11-20 Quote please.eml", "eml"), ("items.csv", "1"), ("quote.pdf", "0")]
    files = crm.files(resource)
    assert files["quote.pdf"] == PDF and files["items.csv"] == CSV
    assert files["2026-11-20 Quote please.eml"] == raw
    [note] = [n for n in crm.notes(resource) if "Quote please" in n]
    assert note.startswith("Mail from bob@x.org: Quote please")
    assert thome.location_tags("VLeads") == [["CRM sync", "Synced"]]


def test_vcontacts_makes_a_party_and_vaccounts_an_account_party_with_its_domain(thome: Home, tryton: TrytonServer) -> None:
    thome.drop("VContacts", make_mail(sender="Carla Diaz <carla@diaz.example>", attachments=[("a.csv", "text/csv", CSV)]))
    thome.drop("VAccounts", make_mail(sender="Info <info@globex.example>"))
    assert thome.run_once() == {"done": 2}
    crm = Crm(tryton)
    parties = {p["name"]: p for p in crm.parties()}
    carla = parties["Carla Diaz"]
    assert (carla["emails"], carla["cats"]) == (["carla@diaz.example"], ["CRM by mail gateway"])
    globex = next(p for p in parties.values() if "CRM account" in p["cats"])
    assert globex["websites"] == ["globex.example"]
    assert crm.opportunities() == []
    assert sorted(p for _, _, p in crm.attachments(f"{PARTY},{carla['id']}")) == ["0", "eml"]
    assert [p for _, _, p in crm.attachments(f"{PARTY},{globex['id']}")] == ["eml"]
    assert any(n.startswith("Mail from carla@diaz.example") for n in crm.notes(f"{PARTY},{carla['id']}"))


def test_known_sender_is_not_created_again_and_a_known_lead_stays_a_lead(thome: Home, tryton: TrytonServer) -> None:
    thome.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="first"))
    thome.run_once()
    thome.drop("VContacts", make_mail(sender="Bob Ray <BOB@X.ORG>", subject="second"))
    assert thome.run_once() == {"done": 2}
    crm = Crm(tryton)
    assert len(crm.parties()) == 1
    [opp] = crm.opportunities()
    emls = [n for n, _, p in crm.attachments(f"sale.opportunity,{opp['id']}") if p == "eml"]
    assert sorted(emls) == ["2026-11-20 first.eml", "2026-11-20 second.eml"]


def test_crm_sync_attaches_to_the_known_contact_and_sends_the_unknown_to_review(thome: Home, tryton: TrytonServer) -> None:
    crm_c = _connector(tryton)
    ann = crm_c.create(
        "contact", PartyData(kind="contact", first_name="Ann", last_name="Lee", emails=("ann@acme.example", "a.lee@acme.example"))
    )
    crm_c.close()
    thome.drop("CRM sync", make_mail(sender="Ann Lee <A.Lee@acme.example>", subject="Re: offer"))
    thome.drop("CRM sync", make_mail(sender="Stranger <who@nowhere.example>", subject="who am I"))
    assert thome.run_once() == {"done": 1, "review": 1}
    crm = Crm(tryton)
    assert [p["name"] for p in crm.parties()] == ["Ann Lee"]  # nobody created
    assert [n for n, _, p in crm.attachments(f"{PARTY},{ann.id}") if p == "eml"] == ["2026-11-20 Re: offer.eml"]
    listed = json.loads(thome.cli("review", "list", "--json", check=True).stdout)
    assert [r["from"] for r in listed["review"]] == ["who@nowhere.example"]
    assert sorted(t for tags in thome.location_tags("CRM sync") for t in tags) == ["CRM review", "CRM sync", "Synced"]


def test_check_online_passes_on_the_live_server(tryton: TrytonServer) -> None:
    c = _connector(tryton)
    try:
        c.check_online()
    finally:
        c.close()


def test_check_online_names_wrong_credentials(tryton: TrytonServer) -> None:
    c = TrytonConnector(TrytonRpc(tryton.url, tryton.database, "admin", "not-the-password"))
    with pytest.raises(Permanent, match="refused the login of 'admin' on database 'crm'"):
        c.check_online()
    c = TrytonConnector(TrytonRpc(tryton.url, "nosuchdb", "admin", tryton.password))
    with pytest.raises(Permanent, match="nosuchdb"):
        c.check_online()


def test_check_online_names_an_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    c = TrytonConnector(TrytonRpc(url, "crm", "admin", "pw", timeout=CLIENT_TIMEOUT))  # refused at once
    with pytest.raises(Retryable, match=f"cannot reach Tryton at {url}"):
        c.check_online()


def test_forget_erases_what_the_gateway_made(thome: Home, tryton: TrytonServer) -> None:
    thome.drop("VContacts", make_mail(sender="Carla Diaz <carla@diaz.example>", attachments=[("a.csv", "text/csv", CSV)]))
    assert thome.run_once() == {"done": 1}
    c = _connector(tryton)
    try:
        [carla] = c.find("carla@diaz.example", ["contact"])
        assert c.made_by_gateway(carla)
        report = c.forget("carla@diaz.example", c.made_by_gateway)
        assert [r.id for r in report.parties] == [carla.id] and report.emails_removed == 1
        assert c.find("carla@diaz.example", ["contact"]) == []
        assert Crm(tryton).attachments(f"{PARTY},{carla.id}") == []
    finally:
        c.close()
