"""The review queue and the quarantine are paged, oldest first, with `total`: a page costs the
same however long the queue is (bench/console.py), and nothing is skipped or shown twice."""

from __future__ import annotations

import pytest

from tests.mail import make_mail
from tests.web.fixtures import drop_other, sign_in, web, web_home

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_the_review_queue_pages_oldest_first_and_a_user_counts_only_their_own(tmp_path):
    home = web_home(tmp_path)
    for i in range(5):  # one run each: ids in the order they came
        home.drop("CRM sync", make_mail(sender=f"W{i} <w{i}@nowhere{i}.example>", subject=f"wait {i}"))
        home.run_once()
    drop_other(home, "CRM sync", make_mail(sender="B <b@nowhere.example>", to="bob@example.com", subject="bob's"))
    home.run_once()
    assert home.states() == {"review": 6}
    with web(home) as client:
        sign_in(client, "root")
        pages = [client.get(f"/api/v1/review?limit=4&offset={o}").json() for o in (0, 4)]
        assert [p["total"] for p in pages] == [6, 6]
        seen = [i["subject"] for p in pages for i in p["review"]]
        assert seen == [f"wait {i}" for i in range(5)] + ["bob's"]
        assert client.get("/api/v1/review?limit=0").status_code == 400

        client.cookies.clear()
        sign_in(client, "me")
        mine = client.get("/api/v1/review?limit=2").json()
        assert mine["total"] == 5 and [i["subject"] for i in mine["review"]] == ["wait 0", "wait 1"]
        assert "5 waiting for review" in client.get("/console/").text  # the overview counts the same
        page = client.get("/console/review?offset=2")
        assert page.status_code == 200
        assert "3–5 of 5" in page.text and "wait 4" in page.text and "wait 1" not in page.text  # 50 a page
