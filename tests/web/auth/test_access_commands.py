"""`crm-gateway user add` and `token add|list|remove`: what they print, their exit codes, and
that what `user add` prints signs in once pasted into the config."""

from __future__ import annotations

import json

import yaml

from tests.web.fixtures import web, web_home


def test_user_add_prints_an_entry_that_signs_in_once_pasted(tmp_path):
    home = web_home(tmp_path, users=False)
    res = home.cli(
        "user",
        "add",
        "carol",
        "--role",
        "admin",
        "--address",
        "carol@example.com",
        "--password-stdin",
        stdin="a long passphrase\n",
    )
    assert res.returncode == 0, res.stderr
    (entry,) = yaml.safe_load(res.stdout)
    assert entry["name"] == "carol" and entry["role"] == "admin" and entry["addresses"] == ["carol@example.com"]
    assert entry["password_hash"].startswith("$argon2id$") and "a long passphrase" not in res.stdout
    assert "paste it under `web:`" in res.stderr
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["web"]["users"] = [entry]
    home.config_path.write_text(yaml.safe_dump(cfg))
    with web(home) as client:
        bad = client.post("/signin", data={"name": "carol", "password": "a long passphrasE", "next": "/"}, follow_redirects=False)
        assert bad.status_code == 401
        ok = client.post("/signin", data={"name": "carol", "password": "a long passphrase", "next": "/"}, follow_redirects=False)
        assert ok.status_code == 303
        assert client.get("/api/v1/me").json()["role"] == "admin"


def test_user_add_refuses_what_it_cannot_use(tmp_path):
    home = web_home(tmp_path, users=False)
    short = home.cli("user", "add", "dan", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr and short.stdout == ""
    role = home.cli("user", "add", "dan", "--role", "boss", "--password-stdin", stdin="long enough pw\n")
    assert role.returncode == 1 and "--role must be one of admin, user" in role.stderr
    addr = home.cli("user", "add", "dan", "--address", "dan.example.com", "--password-stdin", stdin="long enough pw\n")
    assert addr.returncode == 1 and "not an address" in addr.stderr
    no_tty = home.cli("user", "add", "dan", stdin="")
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    usage = home.cli("user", "add")
    assert usage.returncode == 1 and "Missing argument 'NAME'" in usage.stderr  # usage errors are user errors


def test_token_add_list_remove(tmp_path):
    home = web_home(tmp_path)
    none = home.cli("token", "add", "robot")
    assert none.returncode == 1 and "give --role" in none.stderr
    both = home.cli("token", "add", "me", "--role", "admin")
    assert both.returncode == 1 and "is a web user" in both.stderr
    token = home.cli("token", "add", "robot", "--role", "user", "--address", "bob@example.com", check=True).stdout.strip()
    listed = json.loads(home.cli("token", "list", check=True).stdout)["tokens"]
    assert [(t["name"], t["role"], t["addresses"]) for t in listed] == [("robot", "user", ["bob@example.com"])]
    assert token not in home.cli("token", "list", check=True).stdout
    with web(home) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["name"] == "robot" and me["via_token"] is True and "other/*" in me["mailboxes"]
    assert home.cli("token", "remove", "robot").returncode == 0
    gone = home.cli("token", "remove", "robot")
    assert gone.returncode == 1 and "no API token named robot" in gone.stderr
