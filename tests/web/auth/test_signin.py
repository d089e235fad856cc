"""Signing in and out through the form, sessions and CSRF, Bearer tokens, and who may come in
without signing in (loopback with nobody configured; /metrics and /healthz always)."""

from __future__ import annotations

from tests.mail import make_mail
from tests.web.fixtures import PASSWORD, review_in_each, sign_in, web, web_home


def test_sign_in_with_the_right_password_goes_to_next_and_opens_the_pages(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        assert client.get("/status.json").status_code == 401
        assert client.get("/api/v1/status").json() == {
            "error": "sign in first (POST /signin) or send an API token (Authorization: Bearer …)"
        }
        first = client.get("/", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/signin?next=/"
        form = client.get("/signin?next=/status.json")
        assert form.status_code == 200 and 'name="password"' in form.text and 'value="/status.json"' in form.text
        res = client.post("/signin", data={"name": "root", "password": PASSWORD, "next": "/status.json"}, follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"] == "/status.json"
        cookie = res.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain http here
        assert client.get("/status.json").json()["sources"][0]["name"] == "local"
        assert client.get("/").status_code == 200


def test_a_wrong_password_shows_the_form_again_with_401_and_no_session(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        res = client.post("/signin", data={"name": "root", "password": "not it at all", "next": "/"}, follow_redirects=False)
        assert res.status_code == 401
        assert "Wrong name or password." in res.text and 'value="root"' in res.text
        unknown = client.post("/signin", data={"name": "nobody", "password": PASSWORD, "next": "/"}, follow_redirects=False)
        assert unknown.status_code == 401
        assert client.get("/api/v1/status").status_code == 401


def test_next_never_leaves_the_site(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        res = client.post(
            "/signin", data={"name": "me", "password": PASSWORD, "next": "//evil.example/x"}, follow_redirects=False
        )
        assert res.headers["location"] == "/"


def test_a_post_without_the_csrf_token_is_refused_and_with_it_accepted(tmp_path):
    home = web_home(tmp_path)
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", message_id="<c1@nowhere.example>"))
    assert home.run_once() == {"review": 1}
    with web(home) as client:
        token = sign_in(client, "root")
        refused = client.post("/api/v1/review/1/create", json={"kind": "contact"})
        assert refused.status_code == 403
        assert "reload the page" in refused.json()["error"]
        wrong = client.post("/api/v1/review/1/create", json={"kind": "contact"}, headers={"X-CSRF-Token": "guess"})
        assert wrong.status_code == 403
        assert client.get("/api/v1/review").json()["review"][0]["id"] == 1  # nothing happened
        done = client.post("/api/v1/review/1/create", json={"kind": "contact"}, headers={"X-CSRF-Token": token})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "done"
    assert [c["emails"] for c in home.dump()["contacts"]] == [["who@nowhere.example"]]


def test_the_csrf_token_as_a_form_field_is_accepted(tmp_path):
    home = web_home(tmp_path)
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", message_id="<c2@nowhere.example>"))
    assert home.run_once() == {"review": 1}
    with web(home) as client:
        token = sign_in(client, "root")
        assert client.post("/api/v1/review/1/create", data={"kind": "lead"}).status_code == 403
        res = client.post("/api/v1/review/1/create", data={"kind": "lead", "csrf_token": token})
        assert res.status_code == 200, res.text
    assert len(home.dump()["leads"]) == 1


def test_sign_out_ends_the_session(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        token = sign_in(client, "me")
        assert client.post("/signout").status_code == 403  # a write like any other: needs the token
        res = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
        assert res.status_code == 303
        assert client.get("/api/v1/status").status_code == 401


def test_bearer_tokens_need_no_csrf_and_act_with_their_role(tmp_path):
    home = web_home(tmp_path)
    review_in_each(home)
    admin = home.cli("token", "add", "ops", "--role", "admin", check=True).stdout.strip()
    mine = home.cli("token", "add", "me", check=True).stdout.strip()  # a web user: their role and mailboxes
    assert admin.startswith("cgw_") and mine.startswith("cgw_") and admin != mine
    assert admin not in (home.root / "var" / "api-tokens.json").read_text()  # only its hash is kept
    with web(home) as client:
        assert client.get("/api/v1/review", headers={"Authorization": "Bearer cgw_nope"}).status_code == 401
        ids = [i["id"] for i in client.get("/api/v1/review", headers={"Authorization": f"Bearer {admin}"}).json()["review"]]
        assert ids == [1, 2]
        seen = client.get("/api/v1/review", headers={"Authorization": f"Bearer {mine}"}).json()["review"]
        assert [i["id"] for i in seen] == [1]
        done = client.post("/api/v1/review/2/create", json={"kind": "contact"}, headers={"Authorization": f"Bearer {admin}"})
        assert done.status_code == 200, done.text
    home.cli("token", "remove", "ops", check=True)
    with web(home) as client:
        assert client.get("/api/v1/review", headers={"Authorization": f"Bearer {admin}"}).status_code == 401


def test_metrics_and_healthz_stay_open(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        assert client.get("/healthz").text == "ok"
        assert "crm_gateway_rules" in client.get("/metrics").text


def test_without_users_on_loopback_everyone_is_admin_as_before(tmp_path):
    home = web_home(tmp_path, users=False)
    review_in_each(home)
    with web(home, "http://127.0.0.1:8025") as client:
        assert [r["id"] for r in client.get("/review.json").json()["review"]] == [1, 2]
        assert client.get("/api/v1/me").json()["role"] == "admin"
        # a page of another site can post a form, not JSON: nobody signed in, only JSON is taken
        assert client.post("/api/v1/review/1/create", data={"kind": "contact"}).status_code == 403
        assert client.post("/api/v1/review/1/create", json={"kind": "contact"}).status_code == 200


def test_without_users_on_another_address_nothing_but_metrics_is_served(tmp_path):
    home = web_home(tmp_path, users=False, listen="0.0.0.0:8025")
    with web(home) as client:
        res = client.get("/status.json")
        assert res.status_code == 403 and "crm-gateway user add" in res.text
        assert client.get("/healthz").status_code == 200


def test_ten_wrong_passwords_hold_that_name_back(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        for _ in range(10):
            res = client.post("/signin", data={"name": "me", "password": "a wrong guess", "next": "/"}, follow_redirects=False)
            assert res.status_code == 401
        held = client.post("/signin", data={"name": "me", "password": PASSWORD, "next": "/"}, follow_redirects=False)
        assert held.status_code == 429 and "Too many wrong passwords for me" in held.text
        assert client.get("/api/v1/me").status_code == 401
        other = client.post("/signin", data={"name": "bob", "password": PASSWORD, "next": "/"}, follow_redirects=False)
        assert other.status_code == 303  # another name is not held back


def test_a_password_being_checked_does_not_hold_up_other_requests(tmp_path, monkeypatch):
    import threading

    from gateway.web.auth import access as access_module

    checking, answered = threading.Event(), threading.Event()
    held_up: list[bool] = []
    real = access_module.password_matches

    def slow_check(hashed: str, password: str) -> bool:
        checking.set()
        held_up.append(not answered.wait(60))  # the other request is answered meanwhile, or never
        return real(hashed, password)

    monkeypatch.setattr(access_module, "password_matches", slow_check)
    home = web_home(tmp_path)
    with web(home) as client:
        results: list[int] = []
        signing = threading.Thread(
            target=lambda: results.append(
                client.post("/signin", data={"name": "me", "password": PASSWORD, "next": "/"}, follow_redirects=False).status_code
            )
        )
        signing.start()
        assert checking.wait(60)
        assert client.get("/healthz").text == "ok"
        answered.set()
        signing.join(120)
        assert results == [303] and held_up == [False]
