"""`GET /api/v1/freebusy` with an `ews` source against the EWS double (tests/mailboxes/exchange/
ews_free_busy.py names Microsoft's pages it follows): a `user` may ask (availability, not
content) and so may an admin; nobody signed in may not; a wrong question is a 400 in words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from tests.mailboxes.exchange.ews_double import EwsDouble
from tests.mailboxes.exchange.fixtures import MAILBOX, ews_source
from tests.web.fixtures import sign_in, web, web_home

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ASK = {
    "address": [MAILBOX, "boss@example.com", "me@example.com"],
    "from": "2026-12-07T09:00:00+01:00",
    "to": "2026-12-07T12:00:00+01:00",
}


def test_a_user_and_an_admin_ask_for_free_busy_nobody_signed_in_may_not(tmp_path):
    ews = EwsDouble(mailboxes=[MAILBOX]).start()
    try:
        ews.add_event(MAILBOX, datetime(2026, 12, 7, 9, tzinfo=UTC), datetime(2026, 12, 7, 10, tzinfo=UTC), "Busy", "Secret deal")
        ews.add_event("boss@example.com", datetime(2026, 12, 7, 8, tzinfo=UTC), datetime(2026, 12, 7, 9, tzinfo=UTC), "Tentative")
        home = web_home(tmp_path)
        cfg = yaml.safe_load(home.config_path.read_text())
        cfg["sources"].append(ews_source(ews))
        home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        with web(home) as client:
            assert client.get("/api/v1/freebusy", params=ASK).status_code == 401

            sign_in(client, "me")  # a user, owning none of the Exchange mailboxes
            res = client.get("/api/v1/freebusy", params=ASK)
            assert res.status_code == 200, res.text
            doc = res.json()
            assert doc["from"] == "2026-12-07T09:00:00+01:00" and doc["complete"] is False
            sales, boss, me = doc["schedules"]
            assert sales["busy"] == [{"start": "2026-12-07T10:00:00+01:00", "end": "2026-12-07T11:00:00+01:00", "status": "busy"}]
            assert "Secret deal" not in res.text  # availability, not content
            assert boss["busy"][0]["status"] == "tentative" and boss["source"] == "exchange"
            # me@example.com's mailbox is a Maildir, no calendar; Exchange, of its domain, is asked and knows no such mailbox
            assert me["answered"] is False and me["source"] == "exchange" and "SMTP:me@example.com" in me["error"]
            # the boss's tentative hour is not offered; who was not answered is left out
            assert doc["free"] == [{"start": "2026-12-07T11:00:00+01:00", "end": "2026-12-07T12:00:00+01:00"}]

            bad = client.get("/api/v1/freebusy", params={**ASK, "to": "soon"})
            assert bad.status_code == 400 and "`to` is not an ISO 8601" in bad.json()["error"]
            none = client.get("/api/v1/freebusy", params={"from": ASK["from"], "to": ASK["to"]})
            assert none.status_code == 400 and "at least one address" in none.json()["error"]

            token = client.get("/api/v1/me").json()["csrf_token"]
            client.post("/signout", data={"csrf_token": token})
            sign_in(client, "root")
            again = client.get("/api/v1/freebusy", params={**ASK, "address": [MAILBOX], "interval": "60"})
            assert again.status_code == 200 and again.json()["schedules"][0]["view"] == "020"
    finally:
        ews.stop()
