"""With nobody signing in (loopback, no web.users, no token), there is no session to carry a
CSRF token: a write must come from the console's own pages (or be JSON from no other site), and
only this host's names are served, so a page of another site can neither decide nor read."""

from __future__ import annotations

from tests.web.fixtures import review_in_each, web, web_home

HERE = "http://127.0.0.1:8025"


def test_a_form_posted_from_another_site_decides_nothing(tmp_path):
    home = web_home(tmp_path, users=False)
    review_in_each(home)
    with web(home, HERE) as client:
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "cross-site"},
            {},
        ):
            res = client.post("/console/review/1/create", data={"kind": "contact"}, headers=headers, follow_redirects=False)
            assert res.status_code == 403, (headers, res.text)
            assert "this server's own pages" in res.text
        res = client.post("/console/review/1/resolve", data={"record": "contact:1", "searched": "1"}, headers={"Origin": "null"})
        assert res.status_code == 403
        assert client.post("/console/quarantine/retry", data={"reason": "x"}).status_code == 403
        assert client.post("/console/reconcile", data={"fix": "1"}).status_code == 403
        # JSON from another site's page is refused too (the browser would not even send it unasked)
        api = client.post("/api/v1/review/1/create", json={"kind": "contact"}, headers={"Origin": "https://evil.example"})
        assert api.status_code == 403 and "error" in api.json()
    assert home.states() == {"review": 2}
    assert home.dump()["contacts"] == []


def test_a_form_from_the_console_itself_decides(tmp_path):
    home = web_home(tmp_path, users=False)
    review_in_each(home)
    with web(home, HERE) as client:
        res = client.post("/console/review/1/create", data={"kind": "contact"}, headers={"Origin": HERE}, follow_redirects=False)
        assert res.status_code == 303 and "failed" not in res.headers["location"], res.headers["location"]
        # as a browser posts the console's forms under its `Referrer-Policy: no-referrer`
        same = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        res = client.post("/console/review/2/create", data={"kind": "contact"}, headers=same, follow_redirects=False)
        assert res.status_code == 303 and "failed" not in res.headers["location"], res.headers["location"]
    assert "review" not in home.states()


def test_a_foreign_host_is_not_served_while_nobody_signs_in(tmp_path):
    home = web_home(tmp_path, users=False)
    with web(home, "http://rebound.evil.example:8025") as client:
        assert client.get("/status.json").status_code == 400
        assert client.get("/console/review").status_code == 400
    for name in ("http://localhost:8025", "http://127.0.0.1:8025", "http://[::1]:8025"):
        with web(home, name) as client:
            assert client.get("/status.json").status_code == 200, name
    with_users = web_home(tmp_path / "users")
    with web(with_users, "http://crm-gateway.example.com") as client:  # behind a proxy: sign-in guards
        assert client.get("/healthz").status_code == 200
