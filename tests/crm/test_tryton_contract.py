"""The connector contract against a real trytond (party + sale_opportunity, SQLite), started
by `tests/crm/tryton_server.py` on 127.0.0.1 and a free port, one fresh copy of the
template database per test.

The only test double is `FaultProxy`, a fault-injection proxy between the connector and
trytond for the failure scenarios (429, 5xx, stalls, a UserError on the next write); every
other answer is trytond's own. What a user would see is read back over JSON-RPC
(`TrytonInspector`): the party and its contact mechanisms, the opportunity, the attachments
with their bytes, the notes (the gateway's own read back through the marker they carry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from gateway.crm import note_marker
from gateway.crm import tryton_mail as tm
from gateway.crm.base import PartyRef
from gateway.crm.tryton import OPPORTUNITY, PARTY, TrytonConnector
from gateway.crm.tryton_rpc import TrytonRpc
from tests.crm.contract import (
    CLIENT_TIMEOUT,
    ConnectorContract,
    StoredEmail,
    StoredFile,
    StoredNote,
    StoredParty,
    note,
    person,
)
from tests.crm.tryton_server import FaultProxy, Rpc, TrytonServer


class TrytonInspector:
    """Reads Tryton over its own JSON-RPC, as the Tryton client would show it."""

    def __init__(self, rpc: Rpc, connector: TrytonConnector) -> None:
        self.rpc = rpc
        self.connector = connector

    def _kind(self, resource: str) -> tuple[str, str]:
        model, rid = resource.split(",")
        if model == OPPORTUNITY:
            return ("lead", rid)
        [p] = self.rpc.call("model.party.party.read", [int(rid)], ["categories"])
        kind = self.connector._kind_of(p["categories"])
        return ("contact" if kind == "lead-party" else kind, rid)

    def emails(self, message_id: str) -> list[StoredEmail]:
        rows = self.rpc.call(
            "model.ir.attachment.search_read",
            [("description", "like", f"%{tm.MID}: %")],
            0,
            None,
            [("id", "ASC")],
            ["name", "resource", "description", "data"],
        )
        groups: dict[str, list[tuple[dict, tm.Marker]]] = {}
        for r in rows:
            m = tm.parse(r["description"])
            if m is not None and m.message_id == message_id:
                groups.setdefault(m.key, []).append((r, m))
        out = []
        for key, items in sorted(groups.items(), key=lambda kv: min(r["id"] for r, _ in kv[1])):
            links = frozenset(self._kind(r["resource"]) for r, m in items if m.part == "eml")
            first = next(r["resource"] for r, m in items if m.part == "eml")
            files = tuple(
                StoredFile(r["name"], "", len(r["data"] or b""), hashlib.sha256(r["data"] or b"").hexdigest())
                for r, m in items
                if m.part != "eml" and r["resource"] == first
            )
            eml = next(r for r, m in items if m.part == "eml")
            summary = eml["description"].split("\n", 1)[0]
            subject = summary.split(": ", 1)[1] if ": " in summary else summary
            out.append(StoredEmail(tm.email_id(message_id, key), message_id, subject, "", links, files))
        return out

    def party(self, ref: PartyRef) -> StoredParty | None:
        if ref.kind == "lead":
            opp = self.rpc.call("model.sale.opportunity.read", [int(ref.id)], ["party"])
            if not opp:
                return None
            pid, resource = opp[0]["party"], f"{OPPORTUNITY},{ref.id}"
        else:
            pid, resource = int(ref.id), f"{PARTY},{ref.id}"
        mechs = self.rpc.call(
            "model.party.contact_mechanism.search_read", [("party", "=", pid), ("type", "=", "email")], 0, None, None, ["value"]
        )
        notes = self.rpc.call("model.ir.note.search_read", [("resource", "=", resource)], 0, None, None, ["message"])
        owner = next(
            (line[len("Owner: ") :] for n in notes for line in n["message"].split("\n") if line.startswith("Owner: ")), ""
        )
        return StoredParty(ref.kind, ref.id, owner, frozenset(m["value"] for m in mechs))

    def notes(self, ref: PartyRef) -> list[StoredNote]:
        """The record's `ir.note` rows whose message ends with the gateway's note marker (not
        the creation note, not a mail's summary)."""
        resource = f"{OPPORTUNITY if ref.kind == 'lead' else PARTY},{ref.id}"
        rows = self.rpc.call("model.ir.note.search_read", [("resource", "=", resource)], 0, None, [("id", "ASC")], ["message"])
        return [StoredNote(str(r["id"]), p.title, p.text) for r in rows if (p := note_marker.parse(r["message"])) is not None]


def connector_for(server: TrytonServer, url: str | None = None, timeout: float = CLIENT_TIMEOUT) -> TrytonConnector:
    rpc = TrytonRpc(url or server.url, server.database, server.username, server.password, timeout=timeout)
    return TrytonConnector(rpc)


class TestTrytonContract(ConnectorContract):
    @pytest.fixture
    def far_side(self, tryton: TrytonServer) -> Iterator[FaultProxy]:
        with FaultProxy(tryton.url) as proxy:
            yield proxy

    @pytest.fixture
    def connector(self, tryton: TrytonServer, far_side: FaultProxy, timeout: float) -> Iterator[TrytonConnector]:
        c = connector_for(tryton, far_side.url, timeout=timeout)
        try:
            yield c
        finally:
            c.close()

    @pytest.fixture
    def inspect(self, tryton: TrytonServer, connector: TrytonConnector) -> TrytonInspector:
        return TrytonInspector(tryton.rpc(), connector)


def test_a_forgotten_lead_takes_its_notes(tryton: TrytonServer) -> None:
    """trytond deletes the `ir.note` rows of a deleted opportunity and party itself."""
    c = connector_for(tryton)
    try:
        lead = c.create("lead", person("lead", "bob@x.example", first="Bob"))
        c.add_note([lead], note())
        inspect = TrytonInspector(tryton.rpc(), c)
        assert [n.text for n in inspect.notes(lead)] == ["Call back about the quote."]
        c.forget("bob@x.example", lambda r: True)
        assert inspect.notes(lead) == []
        assert tryton.rpc().call("model.ir.note.search_count", [("message", "like", f"%{note_marker.MARKER}%")]) == 0
    finally:
        c.close()
