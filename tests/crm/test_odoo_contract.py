"""The connector contract against Odoo — JSON-2 (Odoo 19+, API key) and JSON-RPC — through a
local double of Odoo's external API (tests/crm/doubles/odoo_double.py), because no
Odoo can run here. Records are read back from the double's tables, as Odoo's screens show them."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterator
from contextlib import closing

import pytest

from gateway.crm.base import PartyRef, make_connector
from gateway.crm.config_models import OdooConfig as CrmConfig
from gateway.crm.odoo import OdooConnector
from gateway.errors import Permanent, Retryable
from tests.crm.contract import (
    CLIENT_TIMEOUT,
    StoredEmail,
    StoredFile,
    StoredNote,
    StoredParty,
    make_mail,
    note,
    person,
)
from tests.crm.doubles.odoo_double import SUBTYPES, OdooDouble
from tests.crm.fixtures import OnADouble

KEY = "s3cret-api-key"
RAW = "crm-gateway raw message"


class OdooInspector:
    def __init__(self, double: OdooDouble) -> None:
        self.double = double

    def emails(self, message_id: str) -> list[StoredEmail]:
        atts = self.double.tables["ir.attachment"]
        groups: dict[str, list[dict]] = {}
        for m in sorted(self.double.tables["mail.message"].values(), key=lambda m: m["id"]):
            if m["message_id"] == message_id:
                raw = [atts[a]["description"] for a in m["attachment_ids"] if str(atts[a]["description"]).startswith(RAW)]
                groups.setdefault(raw[0] if raw else "", []).append(m)
        out = []
        for msgs in groups.values():
            links = set()
            for m in msgs:
                rec = self.double.tables[m["model"]][m["res_id"]]
                links.add(
                    ("lead" if m["model"] == "crm.lead" else "account" if rec["is_company"] else "contact", str(m["res_id"]))
                )
            files = []
            for a in dict.fromkeys(a for m in msgs for a in m["attachment_ids"]):
                att = atts[a]
                if not str(att["description"]).startswith(RAW):
                    data = base64.b64decode(att["datas"])
                    files.append(StoredFile(att["name"], att["mimetype"], len(data), hashlib.sha256(data).hexdigest()))
            first = msgs[0]
            out.append(
                StoredEmail(str(first["id"]), message_id, first["subject"], first["email_from"], frozenset(links), tuple(files))
            )
        return out

    def party(self, ref: PartyRef) -> StoredParty | None:
        model = "crm.lead" if ref.kind == "lead" else "res.partner"
        rec = self.double.tables[model].get(int(ref.id))
        if rec is None:
            return None
        emails = frozenset(
            e.strip() for e in str(rec["email_from" if model == "crm.lead" else "email"] or "").split(",") if e.strip()
        )
        return StoredParty(ref.kind, ref.id, self.double.user_login(rec["user_id"]), emails)

    def notes(self, ref: PartyRef) -> list[StoredNote]:
        """The internal notes in the record's chatter, their HTML body read back as its lines."""
        model = "crm.lead" if ref.kind == "lead" else "res.partner"
        return [
            StoredNote(str(m["id"]), m["subject"] or "", "\n".join(html.unescape(line) for line in m["body"].split("<br>")))
            for m in sorted(self.double.tables["mail.message"].values(), key=lambda m: m["id"])
            if (m["model"], m["res_id"]) == (model, int(ref.id))
            and m["subtype_id"] == SUBTYPES["mail.mt_note"]
            and m["message_type"] == "comment"
        ]


@pytest.fixture(params=["json2", "jsonrpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def double() -> Iterator[OdooDouble]:
    with OdooDouble(secret=KEY) as d:
        yield d


def connect(double: OdooDouble, protocol: str, secret: str = KEY, timeout: float = CLIENT_TIMEOUT) -> OdooConnector:
    return OdooConnector(
        double.url, database="prod", username="bot@example.com", api_key=secret, protocol=protocol, timeout=timeout
    )


class TestOdooContract(OnADouble):
    Inspector = OdooInspector

    @pytest.fixture
    def connector(self, double: OdooDouble, protocol: str, timeout: float) -> Iterator[OdooConnector]:
        with closing(connect(double, protocol, timeout=timeout)) as c:
            yield c


# -- Odoo specifics -------------------------------------------------------------------------


def test_wrong_key_is_a_clear_error_at_check(double: OdooDouble, protocol: str) -> None:
    with pytest.raises(Permanent, match="Invalid apikey|login refused"):
        connect(double, protocol, secret="wrong").check_online()
    connect(double, protocol).check_online()


def test_unreachable_is_a_clear_error_at_check(protocol: str) -> None:
    with OdooDouble() as d:
        pass
    with pytest.raises(Retryable, match="cannot reach"):
        connect(d, protocol).check_online()  # refused at once: nothing listens


def test_json2_sends_the_api_key_as_bearer_and_the_database(double: OdooDouble) -> None:
    connect(double, "json2").find("ann@acme.example", ["contact"])
    [req] = [r for r in double.log if r.path == "/json/2/res.partner/search_read"]
    assert req.headers["authorization"] == f"bearer {KEY}" and req.headers["x-odoo-database"] == "prod"


def test_wildcards_in_an_address_are_escaped(double: OdooDouble, protocol: str) -> None:
    c = connect(double, protocol)
    c.create("contact", person("contact", "1000@example.org"))
    assert c.find("1%@example.org", ["contact"]) == []
    [search] = [r for r in double.log if b"search_read" in r.body or r.path.endswith("search_read")][-1:]
    assert b"1\\\\%@example.org" in search.body


def test_mail_is_on_each_chatter_with_shared_files(double: OdooDouble, protocol: str) -> None:
    c = connect(double, protocol)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    lead = c.create("lead", person("lead", "bob@x.example", first="Bob"))
    c.attach([ann, lead], make_mail())
    messages = list(double.tables["mail.message"].values())
    assert {(m["model"], m["res_id"]) for m in messages} == {("res.partner", int(ann.id)), ("crm.lead", int(lead.id))}
    assert messages[0]["attachment_ids"] == messages[1]["attachment_ids"] and len(double.tables["ir.attachment"]) == 1


def test_backend_from_config(double: OdooDouble) -> None:
    c = make_connector(CrmConfig(backend="odoo", url=double.url, database="prod", username="bot@example.com", api_key=KEY))
    assert isinstance(c, OdooConnector) and c.protocol == "json2"
    c.check_online()


def test_a_note_is_an_internal_note_in_the_chatter(double: OdooDouble, protocol: str) -> None:
    c = connect(double, protocol)
    lead = c.create("lead", person("lead", "bob@x.example", first="Bob"))
    ref = c.add_note([lead], note(text="<b>not markup</b>\nsecond line"))
    [m] = double.tables["mail.message"].values()
    assert str(m["id"]) == ref.ids[0] and (m["model"], m["res_id"]) == ("crm.lead", int(lead.id))
    assert (m["message_type"], m["subtype_id"], m["subject"]) == ("comment", SUBTYPES["mail.mt_note"], "Quote")
    assert m["body"] == "&lt;b&gt;not markup&lt;/b&gt;<br>second line"
