"""Two gateway processes on one PostgreSQL ledger and CRM, both given the same two Dovecot
mailboxes: each watches one, and a mail in both mailboxes is one CRM email whose every copy
carries its keywords in the mailbox (written by the gateway holding that mailbox)."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.ledger import SourceRef
from tests.crm.sql_backends import postgres_url
from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import message_id_of, user_sources, wait_for
from tests.runtime.fixtures import SharingGateway


@pytest.mark.postgres
def test_a_mail_in_mailboxes_of_both_gateways_is_tagged_in_each_by_its_holder(tmp_path, dovecot):
    with postgres_url() as ledger_url, postgres_url() as crm_url:
        gws = [
            SharingGateway(tmp_path / n, n, ledger_url, crm_url, user_sources(dovecot, ["alice", "bob"])) for n in ("gw1", "gw2")
        ]
        try:
            for g in gws:
                g.start()
            wait_for(lambda: Counter(gws[0].holders().values()) == {"gw1": 1, "gw2": 1}, 90, "one mailbox for each gateway")
            raw = make_mail(sender="Both Boxes <both@c.example>", to=["alice@example.com", "bob@example.com"])
            mid = message_id_of(raw)
            for user in ("alice", "bob"):
                dovecot.append("VLeads", raw, user=user)
            for user in ("alice", "bob"):
                wait_for(
                    lambda user=user: {"CRM_sync", "Synced"} <= dovecot.flags("VLeads", user=user).get(mid, set()),
                    90,
                    f"{user}'s copy tagged",
                )
            assert len(gws[1].crm()["emails"]) == 1
        finally:
            for g in gws:
                g.stop()


def test_a_copy_spooled_on_another_machine_is_fetched_again_from_its_mailbox(imap_home, dovecot, tmp_path):
    home = imap_home(folders=["VLeads"])
    raw = make_mail(sender="Far Away <far@i.example>")
    uid = dovecot.append("VLeads", raw)
    with dovecot.client() as c:
        uidvalidity = int(c.select_folder("VLeads", readonly=True)[b"UIDVALIDITY"])
    with home.gateway() as gw:  # the ledger names a spool file on a machine that is gone
        ref = SourceRef("mail", "alice", "VLeads", str(uid), uidvalidity)
        pk = gw.ledger.receive(ref, str(tmp_path / "other-machine" / "spool" / "gone.eml")).id
        assert gw.handle(pk) == "done"
    flags = dovecot.flags("VLeads")[message_id_of(raw)]
    assert {"CRM_sync", "Synced"} <= flags and "\\Seen" not in flags
    assert [l["emails"] for l in home.dump()["leads"]] == [["far@i.example"]]
