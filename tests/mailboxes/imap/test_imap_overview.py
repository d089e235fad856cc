"""The console's overview of one `imap` entry reaching several mailboxes (master user): each
mailbox shows its own counts, and a person sees only their own mailbox and its counts, not the
whole source's (which would tell them how much mail the others get)."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from gateway.admin.access import hash_password
from gateway.web.app import make_app
from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import fleet, wait_for

PASSWORD = "a long passphrase"


def _counts(html: str) -> dict[str, str]:
    """mailbox → its counts as the page shows them."""
    out = {}
    for card in html.split("<h3>")[1:]:
        name = card.split("<small>", 1)[0].strip()
        counts = re.search(r"<dt>Counts</dt><dd>(.*?)</dd>", card, re.S)
        out[name] = re.sub(r"<[^>]+>", "", counts.group(1)).split() if counts else []
    return {k: " ".join(v) for k, v in out.items()}


def test_each_mailbox_of_a_source_shows_its_own_counts(imap_home: Any, many_dovecot: Any) -> None:
    hashed = hash_password(PASSWORD)
    web = {
        "users": [
            {"name": "root", "password_hash": hashed, "role": "admin"},
            {"name": "one", "password_hash": hashed, "role": "user", "addresses": ["u001"]},
        ]
    }
    home = imap_home(server=many_dovecot, source=fleet(["u001", "u002"]), extra={"web": web})
    for i in range(2):
        many_dovecot.append("VLeads", make_mail(sender=f"A {i} <a{i}@one{i}.example>", subject=f"one {i}"), user="u001")
    many_dovecot.append("VLeads", make_mail(sender="B <b@two.example>", subject="two"), user="u002")
    gw = home.start()
    wait_for(lambda: len(home.emails()) == 3, 120, "three mails in the CRM")
    wait_for(lambda: home.states() == {"done": 3}, 120, "three done")
    gw.write_status()
    with TestClient(make_app(gw)) as client:
        for name, want in (("root", {"u001": "done 2", "u002": "done 1"}), ("one", {"u001": "done 2"})):
            res = client.post("/signin", data={"name": name, "password": PASSWORD, "next": "/"}, follow_redirects=False)
            assert res.status_code == 303
            page = client.get("/console/")
            assert page.status_code == 200
            assert _counts(page.text) == want, page.text
            client.post("/signout", headers={"X-CSRF-Token": client.get("/api/v1/me").json()["csrf_token"]})
