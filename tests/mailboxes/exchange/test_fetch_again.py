"""A gateway that takes over an Exchange mailbox whose mail another machine spooled reads the
copy again from the mailbox (the write-back's `fetch`, which the claim asks when the spool file
is not on this machine), against the EWS and Graph doubles: the same MIME bytes, and nothing
for an item that is gone."""

from __future__ import annotations

from gateway.ledger.refs import SourceRef
from tests.mailboxes.exchange.fixtures import MAILBOX, Running, ews_source, graph_source, home_with, mail
from tests.waiting import wait_until


def test_graph_gives_a_copy_again_by_its_id(graph, tls, tmp_path):
    home = home_with(tmp_path, "h", graph_source(graph, tls[0]))
    raw = mail(7)
    with Running(home) as gw:
        item = graph.deliver(MAILBOX, "VLeads", raw)
        assert wait_until(lambda: graph.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]], 30)
        writeback = gw.writebacks["online"]
        assert writeback.fetch(SourceRef("online", MAILBOX, "VLeads", item)) == raw
        assert writeback.fetch(SourceRef("online", MAILBOX, "VLeads", "no-such-item")) is None


def test_ews_gives_a_copy_again_by_its_id(ews, tmp_path):
    home = home_with(tmp_path, "h", ews_source(ews, streaming=False, poll_interval=0.5))
    raw = mail(8)
    with Running(home) as gw:
        item = ews.deliver(MAILBOX, "VLeads", raw)
        assert wait_until(lambda: ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]], 60)
        writeback = gw.writebacks["exchange"]
        assert writeback.fetch(SourceRef("exchange", MAILBOX, "VLeads", item)) == raw
        assert writeback.fetch(SourceRef("exchange", MAILBOX, "VLeads", f"I.{MAILBOX}.999999")) is None
