"""What the webhook receiver gets, seen from a real local HTTP server the test starts: the
signed document of docs/webhook.md, files inline or as URLs, and errors mapped at the boundary."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from gateway.crm.base import make_connector
from gateway.crm.config_models import WebhookConfig as CrmConfig
from gateway.crm.webhook import WebhookConnector
from gateway.errors import Permanent, Retryable
from tests.crm.contract import CLIENT_TIMEOUT, attachment, make_mail, note, person
from tests.crm.doubles.webhook_receiver import WebhookReceiver

SECRET = "shared-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def test_attach_posts_the_signed_mail_with_small_files_inline_and_big_ones_as_urls(receiver: WebhookReceiver) -> None:
    c = WebhookConnector(
        receiver.url, SECRET, max_inline=10, attachment_url="https://gw.example/files/{sha256}", timeout=CLIENT_TIMEOUT
    )
    ann = c.create("contact", person("contact", "ann@acme.example"))
    small, big = attachment("a.txt", b"tiny"), attachment("big.bin", b"x" * 11)
    c.attach([ann], make_mail(attachments=[small, big]))
    [req] = [r for r in receiver.log if r.headers.get("x-crm-gateway-event") == "attach"]
    expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-crm-gateway-signature"] == expected
    doc = json.loads(req.body)
    assert doc["event"] == "attach" and doc["parents"] == [{"kind": "contact", "id": ann.id, "name": "Ann Lee"}]
    mail = doc["mail"]
    assert mail["message_id"] == "<m1@example.org>" and mail["from"]["address"] == "ann@acme.example"
    a, b = mail["attachments"]
    assert base64.b64decode(a["content_base64"]) == b"tiny" and "url" not in a
    assert b["url"] == f"https://gw.example/files/{big.sha256}" and "content_base64" not in b
    assert mail["raw"]["url"].startswith("https://gw.example/files/")  # the .eml is over 10 bytes too


def test_a_note_is_its_own_signed_event_with_the_key_as_idempotency_key(receiver: WebhookReceiver) -> None:
    c = WebhookConnector(receiver.url, SECRET, timeout=CLIENT_TIMEOUT)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    c.add_note([ann, ann], note())
    [req] = [r for r in receiver.log if r.headers.get("x-crm-gateway-event") == "note"]
    assert req.headers["x-crm-gateway-signature"] == "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    doc = json.loads(req.body)
    assert doc["idempotency_key"] == "mail-1/step-1"
    assert doc["parents"] == [{"kind": "contact", "id": ann.id, "name": "Ann Lee"}]
    assert doc["note"] == {
        "title": "Quote",
        "text": "Call back about the quote.",
        "owner": "me@example.com",
        "message_id": "<m1@example.org>",
    }


def test_a_big_file_without_attachment_url_is_permanent(receiver: WebhookReceiver) -> None:
    c = WebhookConnector(receiver.url, SECRET, max_inline=1024, timeout=CLIENT_TIMEOUT)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    with pytest.raises(Permanent, match="max_inline"):
        c.attach([ann], make_mail(attachments=[attachment("big.bin", b"x" * 2000)]))
    assert receiver.events("attach") == []


def test_wrong_secret_is_a_clear_error_at_check(receiver: WebhookReceiver) -> None:
    with pytest.raises(Permanent, match="401.*bad signature"):
        WebhookConnector(receiver.url, "another-secret", timeout=CLIENT_TIMEOUT).check_online()
    WebhookConnector(receiver.url, SECRET, timeout=CLIENT_TIMEOUT).check_online()


def test_unreachable_is_retryable_at_check() -> None:
    with WebhookReceiver(SECRET) as r:
        pass
    with pytest.raises(Retryable, match="cannot reach"):
        WebhookConnector(r.url, SECRET, timeout=CLIENT_TIMEOUT).check_online()


def test_5xx_then_retry_delivers_once(receiver: WebhookReceiver) -> None:
    c = WebhookConnector(receiver.url, SECRET, timeout=CLIENT_TIMEOUT)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    receiver.fail_next(502)
    with pytest.raises(Retryable):
        c.attach([ann], make_mail())
    first = c.attach([ann], make_mail())  # the pipeline's retry
    again = c.attach([ann], make_mail())
    assert first.id == again.id and len(receiver.emails) == 1
    assert len({e["idempotency_key"] for e in receiver.events("attach")}) == 1


def test_a_receiver_without_records_finds_nothing() -> None:
    with WebhookReceiver(SECRET, keeps_records=False) as r:
        c = WebhookConnector(r.url, SECRET, timeout=CLIENT_TIMEOUT)
        c.create("contact", person("contact", "ann@acme.example"))
        assert c.find("ann@acme.example", ["contact"]) == [] and c.find_by_domain("acme.example") == []


def test_backend_from_config(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = CrmConfig(backend="webhook", url=receiver.url, secret=SECRET, max_inline="1KB", attachment_url="https://gw/{sha256}")
    c = make_connector(cfg)
    assert isinstance(c, WebhookConnector) and c.max_inline == 1024
    c.check_online()
