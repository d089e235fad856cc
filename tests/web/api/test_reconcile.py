"""`reconcile` through the API: an admin runs it and sees a mail delivered while the gateway
was down, `fix` files it, the last run's counts are read back; a user is refused."""

from __future__ import annotations

import pytest

from tests.mail import make_mail
from tests.web.fixtures import sign_in, web, web_home

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def _found(report: dict, kind: str) -> list[str]:
    return [f["message_id"] or f["key"] for folder in report["folders"] for f in folder["findings"].get(kind, [])]


def test_an_admin_reconciles_and_fixes_through_the_api_a_user_is_refused(tmp_path):
    home = web_home(tmp_path)
    home.drop("VLeads", make_mail(sender="Seen <seen@seen.example>", subject="seen", message_id="<seen@x.example>"))
    home.run_once()
    late = home.drop("VLeads", make_mail(sender="Late <late@late.example>", subject="late", message_id="<late@x.example>"))
    with web(home) as client:
        token = sign_in(client, "root")
        assert client.get("/api/v1/reconcile").json() == {"at": None, "counts": {}}

        looked = client.post("/api/v1/reconcile", json={"source": "local"}, headers={"X-CSRF-Token": token})
        assert looked.status_code == 200, looked.text
        assert looked.json()["reconciled"] is False
        (unknown,) = _found(looked.json(), "unknown")  # a Maildir copy is named by its file
        assert unknown in ("<late@x.example>", late.name), unknown

        fixed = client.post("/api/v1/reconcile", json={"source": "local", "fix": True}, headers={"X-CSRF-Token": token})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["reconciled"] is True, fixed.json()
        last = client.get("/api/v1/reconcile").json()
        assert last["at"] is not None and sum(last["counts"].values()) == 0

        bad = client.post("/api/v1/reconcile", json={"since": "yesterday"}, headers={"X-CSRF-Token": token})
        assert bad.status_code == 400 and "since" in bad.json()["error"]

        client.post("/signout", data={"csrf_token": token})
        mine = sign_in(client, "me")
        refused = client.post("/api/v1/reconcile", json={}, headers={"X-CSRF-Token": mine})
        assert refused.status_code == 403, refused.text
        assert client.get("/api/v1/reconcile").status_code == 403
    # the late mail is in the CRM once, beside the one seen before; nothing stored twice
    assert sorted(e["message_id"] for e in home.dump()["emails"]) == ["<late@x.example>", "<seen@x.example>"]
