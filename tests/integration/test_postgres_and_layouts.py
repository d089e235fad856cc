"""The same product path on PostgreSQL (ledger and CRM), on Maildir++ folders, and polling."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import yaml

from tests.crm.sql_backends import postgres_url
from tests.mail import make_mail
from tests.waiting import wait_for as _wait


@pytest.mark.postgres
def test_vleads_and_duplicates_with_ledger_and_crm_on_postgresql(home):
    with postgres_url() as crm_url, postgres_url() as ledger_url:
        cfg = yaml.safe_load(home.config_path.read_text())
        cfg["crm"]["url"] = crm_url
        cfg["ledger"]["url"] = ledger_url
        home.config_path.write_text(yaml.safe_dump(cfg))
        raw = make_mail(
            sender="Bob Ray <bob@x.org>",
            message_id="<pg@x.org>",
            attachments=[("a.pdf", "application/pdf", b"%PDF" + b"\0" * 3000)],
        )
        home.drop("VLeads", raw)
        home.drop("VContacts", raw)
        for i in range(4):
            home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject=f"more {i}"))
        assert home.run_once() == {"done": 6}
        dump = json_dump(home)
        # Two worker threads: whichever copy of the shared mail is claimed first decides whether
        # Bob is a lead (VLeads) or a contact (VContacts); either way he is one record, once.
        people = [(p["first_name"], p["last_name"]) for p in dump["leads"] + dump["contacts"]]
        assert people == [("Bob", "Ray")]
        bob = (dump["leads"] + dump["contacts"])[0]["id"]
        assert len(dump["emails"]) == 5 and all([l["id"] for l in e["links"]] == [bob] for e in dump["emails"])
        assert home.run_once() == {"done": 6}
        assert json_dump(home) == dump


def json_dump(home):
    import json

    res = home.cli("crm", "dump", "--json", check=True)
    return json.loads(res.stdout)


def test_maildir_plus_plus_layout(make_home):
    h = make_home()
    cfg = yaml.safe_load(h.config_path.read_text())
    cfg["sources"][0]["layout"] = "maildir++"
    cfg["sources"][0]["path"] = "var/Maildir"
    h.config_path.write_text(yaml.safe_dump(cfg))
    root = h.root / "var" / "Maildir"
    for folder in (".VLeads", ".CRM sync"):
        for sub in ("new", "cur", "tmp"):
            (root / folder / sub).mkdir(parents=True)
    (root / ".VLeads" / "cur" / "1700000001.M1P1.host:2,S").write_bytes(make_mail(sender="Dee Doe <dee@d.example>"))
    assert h.run_once() == {"done": 1}
    assert [l["emails"] for l in h.dump()["leads"]] == [["dee@d.example"]]
    # the user's client marks it read: same copy, new file name — nothing happens twice
    (root / ".VLeads" / "cur" / "1700000001.M1P1.host:2,S").rename(root / ".VLeads" / "cur" / "1700000001.M1P1.host:2,RS")
    assert h.run_once() == {"done": 1}
    assert len(h.dump()["emails"]) == 1


@pytest.mark.parametrize("watch", [True, False], ids=["inotify", "polling"])
def test_running_gateway_picks_up_new_mail_and_resumes_after_restart(home, watch):
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["sources"][0]["watch"] = watch
    cfg["sources"][0]["poll_interval"] = 0.3
    home.config_path.write_text(yaml.safe_dump(cfg))
    home.drop("VLeads", make_mail(sender="Before Start <before@a.example>"))

    def start():
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
            cwd=home.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    proc = start()
    try:
        assert _wait(lambda: len(home.dump()["leads"]) == 1)
        home.drop("VContacts", make_mail(sender="While Running <running@b.example>"))
        assert _wait(lambda: len(home.dump()["contacts"]) == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    home.drop("VAccounts", make_mail(sender="While Stopped <stopped@c.example>"))
    proc = start()
    try:
        assert _wait(lambda: len(home.dump()["accounts"]) == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    crm = home.dump()
    assert len(crm["leads"]) == 1 and len(crm["contacts"]) == 1 and len(crm["emails"]) == 3
    assert home.states() == {"done": 3}
