"""A gateway home with two mailboxes (two Maildir sources, each with its owner), three people
who may sign in (an admin and each mailbox's owner), and the web face over Starlette's
TestClient: real ledger, spool, rules and embedded CRM, no server process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from gateway.admin.access import hash_password
from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.fixtures import FOLDERS, Home
from tests.mail import make_mail

PASSWORD = "correct horse battery"
PEOPLE = {"root": ("admin", []), "me": ("user", ["me@example.com"]), "bob": ("user", ["bob@example.com"])}


def web_home(root: Path, *, users: bool = True, listen: str = "127.0.0.1:8025", crm: dict[str, Any] | None = None) -> Home:
    """`crm`: the config's `crm:` section (default: the embedded CRM in var/crm.db)."""
    sources: list[dict[str, Any]] = []
    for name, path, owner in (("local", "var/mail", "me@example.com"), ("other", "var/mail2", "bob@example.com")):
        sources.append(
            {
                "name": name,
                "type": "maildir",
                "path": path,
                "layout": "fs",
                "owner": [owner],
                "crm_user": owner,
                "folders": FOLDERS,
            }
        )
        for f in FOLDERS:
            for sub in ("new", "cur", "tmp"):
                (root / path / f / sub).mkdir(parents=True, exist_ok=True)
    web: dict[str, Any] = {"listen": listen}
    if users:
        hashed = hash_password(PASSWORD)
        web["users"] = [{"name": n, "password_hash": hashed, "role": r, "addresses": a} for n, (r, a) in PEOPLE.items()]
    return Home(root, extra={"sources": sources, "web": web} | ({"crm": crm} if crm else {}))


def drop_other(home: Home, folder: str, raw: bytes) -> None:
    """Deliver into the second mailbox (`other`, bob's)."""
    mail, home.mail = home.mail, home.root / "var" / "mail2"
    try:
        home.drop(folder, raw)
    finally:
        home.mail = mail


def review_in_each(home: Home) -> None:
    """One message in review in me's mailbox (id 1) and one in bob's (id 2)."""
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", subject="for me", message_id="<r1@nowhere.example>"))
    home.run_once()
    drop_other(
        home,
        "CRM sync",
        make_mail(
            sender="Else <else@nowhere.example>", to="bob@example.com", subject="for bob", message_id="<r2@nowhere.example>"
        ),
    )
    home.run_once()
    assert home.states() == {"review": 2}


def crm(home: Home) -> SqlConnector:
    return SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")


def make_record(home: Home, kind: str, first: str, last: str, email: str, owner: str = "") -> str:
    c = crm(home)
    try:
        return c.create(kind, PartyData(kind=kind, first_name=first, last_name=last, emails=(email,), owner=owner)).id  # type: ignore[arg-type]
    finally:
        c.close()


@contextmanager
def web(home: Home, base_url: str = "http://testserver") -> Iterator[TestClient]:
    """`base_url` names the host asked (with nobody signing in, only this host's names are served)."""
    from gateway.web.app import make_app

    with home.gateway() as gw, TestClient(make_app(gw), base_url=base_url) as client:
        yield client


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token, as `GET /api/v1/me` tells it."""
    res = client.post("/signin", data={"name": name, "password": password, "next": "/"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == name
    return str(me.json()["csrf_token"])
