"""The connector contract against the webhook connector, posting to a real local HTTP server
(tests/crm/doubles/webhook_receiver.py) that implements docs/webhook.md and checks
every signature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.crm.base import PartyRef
from gateway.crm.webhook import WebhookConnector
from tests.crm.contract import ConnectorContract, StoredEmail, StoredFile, StoredNote, StoredParty
from tests.crm.doubles.webhook_receiver import WebhookReceiver

SECRET = "shared-webhook-secret"


class ReceiverInspector:
    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def emails(self, message_id: str) -> list[StoredEmail]:
        return [
            StoredEmail(
                eid,
                e["mail"]["message_id"],
                e["mail"]["subject"],
                e["mail"]["from"]["address"],
                frozenset(e["links"]),
                tuple(StoredFile(a["filename"], a["content_type"], a["size"], a["sha256"]) for a in e["files"]),
            )
            for eid, e in sorted(self.receiver.emails.items(), key=lambda kv: int(kv[0]))
            if e["mail"]["message_id"] == message_id
        ]

    def party(self, ref: PartyRef) -> StoredParty | None:
        p = self.receiver.parties.get(ref.id)
        return None if p is None else StoredParty(p["kind"], ref.id, p["owner"], frozenset(p["emails"]))

    def notes(self, ref: PartyRef) -> list[StoredNote]:
        return [
            StoredNote(nid, n["note"]["title"], n["note"]["text"])
            for nid, n in sorted(self.receiver.notes.items(), key=lambda kv: int(kv[0]))
            if (ref.kind, ref.id) in n["links"]
        ]


class TestWebhookContract(ConnectorContract):
    @pytest.fixture
    def receiver(self) -> Iterator[WebhookReceiver]:
        with WebhookReceiver(SECRET) as r:
            yield r

    @pytest.fixture
    def connector(self, receiver: WebhookReceiver, timeout: float) -> Iterator[WebhookConnector]:
        c = WebhookConnector(receiver.url, SECRET, timeout=timeout)
        try:
            yield c
        finally:
            c.close()

    @pytest.fixture
    def inspect(self, receiver: WebhookReceiver) -> ReceiverInspector:
        return ReceiverInspector(receiver)

    @pytest.fixture
    def far_side(self, receiver: WebhookReceiver) -> WebhookReceiver:
        return receiver
