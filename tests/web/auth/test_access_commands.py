"""`crm-gateway user add|list|remove` and `token add|list|remove`: what they print, their exit
codes, and that a person `user add` writes signs in at once (no restart), as does what
`user add --print` prints once pasted into the config."""

from __future__ import annotations

import json

import yaml

from tests.web.fixtures import web, web_home


def test_user_add_print_gives_an_entry_that_signs_in_once_pasted(tmp_path):
    home = web_home(tmp_path, users=False)
    res = home.cli(
        "user",
        "add",
        "--print",
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


def test_user_add_writes_the_users_file_and_the_person_signs_in_without_a_restart(tmp_path):
    home = web_home(tmp_path)  # the config lists root (admin), me and bob (users)
    with web(home) as client:
        refused = client.post(
            "/signin", data={"name": "erin", "password": "erin's passphrase", "next": "/"}, follow_redirects=False
        )
        assert refused.status_code == 401
        added = home.cli("user", "add", "erin", "--address", "me@example.com", "--password-stdin", stdin="erin's passphrase\n")
        assert added.returncode == 0, added.stderr
        assert added.stdout == "" and "added erin (user)" in added.stderr and "web-users.yaml" in added.stderr
        path = home.root / "var" / "web-users.yaml"
        assert path.stat().st_mode & 0o777 == 0o600 and "erin's passphrase" not in path.read_text()
        ok = client.post("/signin", data={"name": "erin", "password": "erin's passphrase", "next": "/"}, follow_redirects=False)
        assert ok.status_code == 303
        me = client.get("/api/v1/me").json()
        assert me["name"] == "erin" and me["role"] == "user" and "local" in " ".join(me["mailboxes"])
        # a new password replaces the entry: the old session's fingerprint no longer matches
        again = home.cli("user", "add", "erin", "--address", "me@example.com", "--password-stdin", stdin="a new passphrase\n")
        assert again.returncode == 0 and "replaced erin" in again.stderr
        assert client.get("/api/v1/me").status_code == 401
        listed = json.loads(home.cli("user", "list", check=True).stdout)["users"]
        assert [(u["name"], u["role"], u["kept_in"]) for u in listed] == [
            ("root", "admin", "config"),
            ("me", "user", "config"),
            ("bob", "user", "config"),
            ("erin", "user", "users_file"),
        ]
        assert "argon2" not in home.cli("user", "list", check=True).stdout
        # removed: signing in fails at once
        assert (
            client.post(
                "/signin", data={"name": "erin", "password": "a new passphrase", "next": "/"}, follow_redirects=False
            ).status_code
            == 303
        )
        removed = home.cli("user", "remove", "erin")
        assert removed.returncode == 0 and "removed erin" in removed.stderr
        assert client.get("/api/v1/me").status_code == 401
        gone = client.post("/signin", data={"name": "erin", "password": "a new passphrase", "next": "/"}, follow_redirects=False)
        assert gone.status_code == 401
    assert home.cli("user", "remove", "erin").returncode == 1
    in_config = home.cli("user", "add", "me", "--password-stdin", stdin="long enough pw\n")
    assert in_config.returncode == 1 and "is in the config's web.users" in in_config.stderr
    config_remove = home.cli("user", "remove", "root")
    assert config_remove.returncode == 1 and "remove that entry there" in config_remove.stderr


def test_a_users_token_acts_as_they_are_now_and_ends_with_them(tmp_path):
    home = web_home(tmp_path)
    home.cli("user", "add", "erin", "--role", "admin", "--password-stdin", stdin="erin's passphrase\n", check=True)
    token = home.cli("token", "add", "erin", check=True).stdout.strip()
    bearer = {"Authorization": f"Bearer {token}"}
    with web(home) as client:
        assert client.get("/api/v1/me", headers=bearer).json()["role"] == "admin"
        # demoted: the token acts as the user erin is now
        home.cli(
            "user", "add", "erin", "--address", "me@example.com", "--password-stdin", stdin="erin's passphrase\n", check=True
        )
        me = client.get("/api/v1/me", headers=bearer).json()
        assert me["role"] == "user" and "*/me@example.com" in me["mailboxes"]
        removed = home.cli("user", "remove", "erin", check=True)
        assert "API token" in removed.stderr
        assert client.get("/api/v1/me", headers=bearer).status_code == 401
        # a hand-edited end that is no time counts as ended, not as a 500
        robot = home.cli("token", "add", "robot", "--role", "admin", check=True).stdout.strip()
        path = home.root / "var" / "api-tokens.json"
        doc = json.loads(path.read_text())
        for t in doc["tokens"]:
            t["expires_at"] = "next tuesday" if t["name"] == "robot" else t["expires_at"]
        path.write_text(json.dumps(doc))
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {robot}"}).status_code == 401


def test_a_written_user_ends_the_open_mode(tmp_path):
    home = web_home(tmp_path, users=False)  # loopback, nobody configured: open to all
    with web(home, "http://127.0.0.1:8025") as client:
        assert client.get("/api/v1/me").json()["role"] == "admin"
        home.cli("user", "add", "root", "--role", "admin", "--password-stdin", stdin="root passphrase\n", check=True)
        assert client.get("/api/v1/me").status_code == 401


def test_a_token_with_days_stops_working_when_it_expires(tmp_path):
    home = web_home(tmp_path)
    bad = home.cli("token", "add", "robot", "--role", "admin", "--days", "0")
    assert bad.returncode == 1 and "--days must be more than 0" in bad.stderr
    made = home.cli("token", "add", "robot", "--role", "admin", "--days", "30", check=True)
    token = made.stdout.strip()
    assert ", until 20" in made.stderr
    (listed,) = json.loads(home.cli("token", "list", check=True).stdout)["tokens"]
    assert listed["expired"] is False and listed["expires_at"]
    with web(home) as client:
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # the clock passes the token's end: the file says it ended yesterday
        path = home.root / "var" / "api-tokens.json"
        doc = json.loads(path.read_text())
        doc["tokens"][0]["expires_at"] = "2020-01-01T00:00:00+00:00"
        path.write_text(json.dumps(doc))
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    (listed,) = json.loads(home.cli("token", "list", check=True).stdout)["tokens"]
    assert listed["expired"] is True


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
