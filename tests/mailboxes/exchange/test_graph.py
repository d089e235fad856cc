"""The `graph` source against the Graph double (tests/mailboxes/exchange/graph_double.py), a local HTTPS server
answering msal and httpx with the JSON documents Microsoft publishes: no Graph endpoint runs here."""

from __future__ import annotations

import pytest

from gateway.admin.status import status_doc
from gateway.mailboxes.graph.source import GraphError
from tests.mailboxes.exchange.fixtures import MAILBOX, Running, emails, graph_source, home_with, mail, moving_leads_to
from tests.waiting import wait_until


def test_vleads_mail_reaches_the_crm_and_carries_the_categories(graph, tls, tmp_path):
    home = home_with(tmp_path, "h", graph_source(graph, tls[0]))
    with Running(home) as gw:
        assert wait_until(lambda: graph.folder_id(MAILBOX, "CRM sync") is not None, 30)  # created when missing
        imm = graph.deliver(MAILBOX, "VLeads", mail(1))
        assert wait_until(lambda: graph.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]], 30)
        gw.write_status()
    crm = home.dump()
    assert [lead["emails"] for lead in crm["leads"]] == [["buyer1@customer1.example"]]
    assert len(crm["emails"]) == 1
    led = home.ledger()
    try:
        from gateway.ledger.schema import locations

        with led.engine.connect() as c:
            keys = [r.item_key for r in c.execute(locations.select())]
    finally:
        led.close()
    assert keys == [imm]  # the immutable id, not the default one
    assert all('IdType="ImmutableId"' in h.get("Prefer", "") for _t, _m, p, h in graph.requests if p.startswith("/v1.0/"))
    src = status_doc(home.config())["sources"][0]
    assert src["last_connected"] is True and src["mode"] == "poll"  # connected while it ran; stopped now
    assert next(f for f in src["folders"] if f["folder"] == "VLeads")["counts"] == {"done": 1}


def test_restart_resumes_from_the_delta_link_and_410_resyncs_without_duplicates(graph, tls, tmp_path):
    home = home_with(tmp_path, "h", graph_source(graph, tls[0]))
    for n in range(1, 4):  # three messages, two a page: @odata.nextLink then @odata.deltaLink
        graph.deliver(MAILBOX, "VLeads", mail(n))
    assert home.run_once().get("done") == 3
    assert graph.mime_reads == 3 and len(emails(home)) == 3
    led = home.ledger()
    try:
        assert "deltatoken=" in led.get_cursor("online", MAILBOX, "VLeads")["link"]
    finally:
        led.close()

    assert home.run_once().get("done") == 3  # a restart: nothing read or done again
    assert graph.mime_reads == 3 and graph.count("PATCH", "/messages/") == 3

    graph.deliver(MAILBOX, "VLeads", mail(4))
    graph.expire_delta_tokens()  # the next delta answers 410 Gone / SyncStateNotFound
    assert home.run_once().get("done") == 4
    assert graph.mime_reads == 4 and len(emails(home)) == 4 and len(home.dump()["leads"]) == 4
    assert graph.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]] * 4


def test_429_is_waited_out_for_the_retry_after_asked(graph, tls, tmp_path):
    home = home_with(tmp_path, "h", graph_source(graph, tls[0]))
    graph.deliver(MAILBOX, "VLeads", mail(1))
    graph.throttle(2, 1.0)
    assert home.run_once().get("done") == 1
    assert graph.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]]
    times = [t for t, _m, p, _h in graph.requests if p.startswith("/v1.0/")]
    assert len(graph.throttled) == 2
    for when, wait in graph.throttled:
        assert min(t for t in times if t > when) - when >= wait - 0.01


def test_clear_errors_for_secret_permission_and_missing_folder(graph, tls, tmp_path):
    wrong = home_with(tmp_path, "a", graph_source(graph, tls[0], client_secret="nope")).gateway()
    with pytest.raises(GraphError, match="refused a token.*invalid_client.*AADSTS7000215"):
        wrong.sources[0].scan_once()
    wrong.close()

    graph.roles.clear()
    denied = home_with(tmp_path, "b", graph_source(graph, tls[0])).gateway()
    with pytest.raises(GraphError, match="403 ErrorAccessDenied.*Mail.ReadWrite"):
        denied.sources[0].scan_once()
    denied.close()
    graph.roles.add("Mail.ReadWrite")

    missing = home_with(tmp_path, "c", graph_source(graph, tls[0], create_folders=False)).gateway()
    with pytest.raises(GraphError, match="folder 'VLeads' is missing in sales@example.com"):
        missing.sources[0].scan_once()
    missing.close()


def test_a_rule_that_moves_sets_the_categories_then_moves_the_message(graph, tls, tmp_path):
    home = home_with(tmp_path, "h", graph_source(graph, tls[0]))
    moving_leads_to(home, "Archive")
    with Running(home):
        graph.deliver(MAILBOX, "VLeads", mail(1))
        assert wait_until(lambda: graph.categories(MAILBOX, "Archive") == [["CRM sync", "Synced"]], 30)
    assert graph.categories(MAILBOX, "VLeads") == []
    assert home.states() == {"done": 1} and len(emails(home)) == 1
    assert home.location_tags("Archive") == [["CRM sync", "Synced"]]  # the ledger follows the message
