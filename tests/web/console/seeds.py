"""Gateway homes the console's tests look at: mail waiting for review (with candidates and
without), one quarantined, one done, and a CRM with records to search."""

from __future__ import annotations

from typing import Any

import yaml

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.fixtures import Home
from tests.mail import make_mail


def crm_records(home: Home) -> dict[str, str]:
    """Two contacts share Ann's address (so her mail waits for a person) and a third, Carl,
    matches nothing the mail says; their ids by name."""
    crm = SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")
    try:
        made = {}
        for first, last, address in (
            ("Ann", "One", "ann@acme.example"),
            ("Ann", "Two", "ann@acme.example"),
            ("Carl", "Vance", "carl@vance.example"),
        ):
            data = PartyData(kind="contact", first_name=first, last_name=last, emails=(address,))
            made[f"{first} {last}"] = crm.create("contact", data).id
        return made
    finally:
        crm.close()


def set_config(home: Home, **keys: Any) -> None:
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg.update(keys)
    home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def seeded(home: Home) -> dict[str, str]:
    """Ann's mail in review with two candidates, a stranger's in review with none, Bob's done
    (a lead), Ben's big one quarantined (over max_message_size while it was 2 KB, since
    raised: a retry takes it)."""
    ids = crm_records(home)
    home.drop("CRM sync", make_mail(sender="Ann Lee <ann@acme.example>", subject="Quote for 40 chairs"))
    home.drop("CRM sync", make_mail(sender="Who Knows <who@nowhere.example>", subject="Are you open on Sunday?"))
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="Brochure please"))
    set_config(home, max_message_size="2KB")
    home.drop(
        "VLeads", make_mail(sender="Big Ben <ben@big.example>", attachments=[("a.bin", "application/octet-stream", b"x" * 5000)])
    )
    assert home.run_once() == {"review": 2, "done": 1, "quarantined": 1}
    set_config(home, max_message_size="10MB")
    return ids


def links_of(home: Home, subject: str) -> list[dict[str, Any]]:
    """The records the CRM email of the mail with this subject is on."""
    return [link for e in home.dump()["emails"] if e["subject"] == subject for link in e["links"]]
