"""A copy whose spool file another gateway wrote (another machine's spool): fetched again
from its Maildir; when its mailbox cannot give it, retried, never quarantined."""

from __future__ import annotations

from gateway.ledger import SourceRef
from gateway.ledger.states import LocationState
from tests.mail import make_mail


def test_a_copy_spooled_elsewhere_is_read_again_from_its_maildir(home, tmp_path):
    file = home.drop("VLeads", make_mail(sender="Far Away <far@f.example>"))
    with home.gateway() as gw:
        ref = SourceRef("local", "me@example.com", "VLeads", file.name)
        pk = gw.ledger.receive(ref, str(tmp_path / "other-machine" / "spool" / "gone.eml")).id
        assert gw.handle(pk) == "done"
    assert [l["emails"] for l in home.dump()["leads"]] == [["far@f.example"]]


def test_a_copy_spooled_elsewhere_and_gone_from_its_mailbox_waits_and_is_not_quarantined(home, tmp_path):
    with home.gateway() as gw:
        ref = SourceRef("local", "me@example.com", "VLeads", "1700000000.gone.host")
        pk = gw.ledger.receive(ref, str(tmp_path / "other-machine" / "spool" / "gone.eml")).id
        assert gw.handle(pk) == "retrying"
        assert gw.ledger.location(pk).state == LocationState.NEW  # open: the sweep offers it again
        assert gw.ledger.messages_in(["quarantined"]) == []
