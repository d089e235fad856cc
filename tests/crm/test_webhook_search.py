"""The webhook backend keeps no records the gateway can read: a record search is refused for
good (exit 1, HTTP 501) with the reason, and only an admin may pick a record there."""

from __future__ import annotations

from pathlib import Path

from tests.web.fixtures import sign_in, web, web_home

CRM = {"backend": "webhook", "url": "http://127.0.0.1:9/crm", "secret": "shared-webhook-secret"}


def test_search_is_not_supported_and_only_an_admin_picks_a_record(tmp_path: Path) -> None:
    home = web_home(tmp_path, crm=CRM)
    res = home.cli("crm", "search", "pump")
    assert res.returncode == 1 and "the webhook CRM connector cannot search records" in res.stderr
    with web(home) as client:
        token = sign_in(client, "me")
        search = client.get("/api/v1/crm/search", params={"q": "pump"})
        assert search.status_code == 501 and "cannot search records" in search.json()["error"]
        pick = client.post(
            "/api/v1/link", json={"record": "contact:7", "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert pick.status_code == 501 and "only an admin may pick one" in pick.json()["error"]
    with web(home) as client:
        token = sign_in(client, "root")
        pick = client.post(
            "/api/v1/link", json={"record": "contact:7", "message_id": "<none@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert pick.status_code == 404 and "no message" in pick.json()["error"]  # an admin's pick is not refused
