"""Sign-in through an OpenID Connect provider (a real one over HTTP, tests/web/oidc_provider.py):
the person the provider names by e-mail gets their web user's session; anyone else, a forged
state or an unverified address does not."""

from __future__ import annotations

import httpx
import yaml

from tests.web.fixtures import web, web_home
from tests.web.oidc_provider import config_of, provider


def _home(tmp_path, p):
    home = web_home(tmp_path)
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["web"]["oidc"] = config_of(p)
    cfg["web"]["users"].append({"name": "olga", "role": "user", "addresses": ["olga@example.com"]})  # no password: SSO only
    home.config_path.write_text(yaml.safe_dump(cfg))
    return home


def _through_provider(client, next_: str = "/api/v1/me"):
    start = client.get("/signin/oidc", params={"next": next_}, follow_redirects=False)
    assert start.status_code == 303, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False, timeout=30)
    assert at_provider.status_code == 302
    back = at_provider.headers["location"]
    assert back.startswith("http://testserver/signin/oidc/callback?")
    return client.get(back.removeprefix("http://testserver"), follow_redirects=False)


def test_the_provider_signs_in_the_web_user_with_that_address(tmp_path):
    with provider() as p:
        home = _home(tmp_path, p)
        with web(home) as client:
            assert "Sign in with single sign-on" in client.get("/signin").text
            done = _through_provider(client)
            assert done.status_code == 303 and done.headers["location"] == "/api/v1/me"
            me = client.get("/api/v1/me").json()
            assert me["name"] == "me" and me["role"] == "user"
        p.email = "olga@example.com"
        with web(home) as client:
            assert _through_provider(client).status_code == 303
            assert client.get("/api/v1/me").json()["name"] == "olga"
            # and olga has no password to sign in with
            refused = client.post("/signin", data={"name": "olga", "password": "", "next": "/"})
            assert refused.status_code == 401


def test_strangers_unverified_addresses_and_forged_answers_are_refused(tmp_path):
    with provider() as p:
        home = _home(tmp_path, p)
        p.email = "stranger@else.example"
        with web(home) as client:
            res = _through_provider(client)
            assert res.status_code == 401 and "stranger@else.example may not use this gateway" in res.text
            assert client.get("/api/v1/me").status_code == 401
        p.email, p.email_verified = "me@example.com", False
        with web(home) as client:
            res = _through_provider(client)
            assert res.status_code == 401 and "not verified" in res.text
        p.email_verified = True
        with web(home) as client:
            start = client.get("/signin/oidc", follow_redirects=False)
            back = httpx.get(start.headers["location"], follow_redirects=False, timeout=30).headers["location"]
            forged = back.removeprefix("http://testserver").replace("state=", "state=x")
            res = client.get(forged, follow_redirects=False)
            assert res.status_code == 401 and "does not belong to this browser" in res.text
            assert client.get("/api/v1/me").status_code == 401
        with web(home) as client:  # no flow started in this browser
            res = client.get("/signin/oidc/callback?code=abc&state=def", follow_redirects=False)
            assert res.status_code == 401 and "start it again" in res.text


def test_an_address_the_provider_does_not_vouch_for_or_a_user_name_as_address_is_refused(tmp_path):
    with provider() as p:
        home = _home(tmp_path, p)
        p.email_verified = None  # the provider does not say whether it checked the address
        with web(home) as client:
            res = _through_provider(client)
            assert res.status_code == 401 and "not verified" in res.text
            assert client.get("/api/v1/me").status_code == 401
        p.email_verified = True
        p.email = "root"  # a verified "address" that is the admin's user name: not the admin
        with web(home) as client:
            res = _through_provider(client)
            assert res.status_code == 401 and "root may not use this gateway" in res.text
            assert client.get("/api/v1/me").status_code == 401
        cfg = yaml.safe_load(home.config_path.read_text())
        cfg["web"]["oidc"]["claim"] = "sub"  # a claim that names users: matched by name
        cfg["web"]["users"].append({"name": "person-1", "role": "user", "addresses": []})
        home.config_path.write_text(yaml.safe_dump(cfg))
        with web(home) as client:
            assert _through_provider(client).status_code == 303
            assert client.get("/api/v1/me").json()["name"] == "person-1"
