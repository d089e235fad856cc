"""Credentials in `crm.url` (`user:pw@`, `?api_key=`) never reach the log or the CLI output.

The CRM is the webhook receiver test double (tests/crm/doubles/webhook_receiver.py): a
real HTTP server written from docs/webhook.md, since a webhook CRM is whatever the user runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from gateway.logs import redact_url, redact_urls
from tests.crm.doubles.webhook_receiver import WebhookReceiver
from tests.mail import make_mail

SECRET = "shared-webhook-secret"
PASSWORD = "Pw-9f3kq-Secret"
API_KEY = "Key-77xq-Secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def _credentialed(url: str) -> str:
    return url.replace("http://", f"http://gw:{PASSWORD}@") + f"hook?api_key={API_KEY}&v=1"


def _use_webhook(home, url: str) -> None:
    import yaml

    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["crm"] = {"backend": "webhook", "url": url, "secret": SECRET, "timeout": 30}
    home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_a_run_logs_no_password_or_api_key_of_the_crm_url(home, receiver: WebhookReceiver) -> None:
    _use_webhook(home, _credentialed(receiver.url))
    home.drop("VLeads", make_mail(sender="Ann Lee <ann@acme.example>", subject="Quote"))
    res = home.cli("run", "--once", "--log-level", "debug")
    assert res.returncode == 0, res.stderr
    assert receiver.log, "the gateway did not talk to the CRM"
    # the credentials did travel (as Basic auth and in the query), only not into the log
    # (the query exactly as configured: httpx once glued the base URL's "/" onto its last value)
    assert all(
        parse_qs(r.query) == {"api_key": [API_KEY], "v": ["1"]} and r.headers.get("authorization", "").startswith("Basic ")
        for r in receiver.log
    )
    assert PASSWORD not in res.stderr + res.stdout and API_KEY not in res.stderr + res.stdout


def test_check_online_prints_no_credentials_when_the_crm_answers_or_not(home, receiver: WebhookReceiver) -> None:
    url = _credentialed(receiver.url)
    _use_webhook(home, url)
    ok = home.cli("check", "--online")
    assert ok.returncode == 0, ok.stderr
    assert PASSWORD not in ok.stderr + ok.stdout and API_KEY not in ok.stderr + ok.stdout
    receiver.stop()  # now unreachable: the error names the URL, masked
    down = home.cli("check", "--online")
    assert down.returncode == 2, down.stderr
    assert "cannot reach" in down.stderr and "gw:***@" in down.stderr and "api_key=***" in down.stderr
    assert PASSWORD not in down.stderr + down.stdout and API_KEY not in down.stderr + down.stdout


def test_redaction_masks_password_and_query_values_only() -> None:
    assert redact_url("https://u:p@h:8443/x/y?api_key=k&a=1#f") == "https://u:***@h:8443/x/y?api_key=***&a=***#f"
    assert redact_url("https://h/x") == "https://h/x"
    assert redact_url("postgresql+psycopg://gw:pw@db/gw") == "postgresql+psycopg://gw:***@db/gw"
    assert (
        redact_urls('HTTP Request: POST http://u:p@h/?token=t "HTTP/1.1 200 OK"')
        == 'HTTP Request: POST http://u:***@h/?token=*** "HTTP/1.1 200 OK"'
    )
