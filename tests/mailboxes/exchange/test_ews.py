"""The `ews` source against the EWS double (tests/mailboxes/exchange/ews_double.py), a local HTTP server
answering exchangelib with the SOAP documents Microsoft publishes: no Exchange server runs here."""

from __future__ import annotations

import logging

import pytest

from gateway.admin.status import status_doc
from gateway.mailboxes.ews.session import EwsError
from tests.mailboxes.exchange.fixtures import MAILBOX, Running, emails, ews_source, home_with, mail, moving_leads_to
from tests.waiting import wait_until


def test_vleads_mail_reaches_the_crm_by_push_and_carries_the_categories(ews, tmp_path):
    """Folders are created, a streaming subscription delivers the new mail, the CRM gets a lead and the
    mail, and the item then carries "CRM sync" and "Synced"; a dropped stream reconnects and re-syncs."""
    home = home_with(tmp_path, "h", ews_source(ews, streaming=True))
    with Running(home) as gw:
        assert wait_until(lambda: len(ews.streams) == 1, 30), gw.sources[0].status()
        assert all(ews.folder(MAILBOX, f) for f in ("VLeads", "VContacts", "VAccounts", "CRM sync"))
        ews.deliver(MAILBOX, "VLeads", mail(1))
        assert wait_until(lambda: ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]], 30)
        crm = home.dump()
        assert [lead["emails"] for lead in crm["leads"]] == [["buyer1@customer1.example"]]
        assert len(crm["emails"]) == 1

        ews.drop_streams()  # the network drops the stream; mail arrives before the reconnect
        ews.deliver(MAILBOX, "VLeads", mail(2))
        assert wait_until(lambda: sorted(map(tuple, ews.categories(MAILBOX, "VLeads"))) == [("CRM sync", "Synced")] * 2, 30)
        assert ews.count("Subscribe") >= 2
        gw.write_status()
    doc = status_doc(home.config())
    src = doc["sources"][0]
    assert src["type"] == "ews" and src["last_connected"] is True  # connected while it ran; stopped now
    leads = next(f for f in src["folders"] if f["folder"] == "VLeads")
    assert leads["items"] == 2 and leads["counts"] == {"done": 2} and leads["last_sync"]
    assert len(emails(home)) == 2


def test_restart_resumes_from_the_sync_state_and_an_expired_state_resyncs_without_duplicates(ews, tmp_path):
    home = home_with(tmp_path, "h", ews_source(ews))
    for n in range(1, 4):  # three mails, two changes a page: SyncFolderItems pages
        ews.deliver(MAILBOX, "VLeads", mail(n))
    assert home.run_once().get("done") == 3
    assert len(emails(home)) == 3 and ews.mime_reads == 3
    assert ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]] * 3
    led = home.ledger()
    try:
        cursor = led.get_cursor("exchange", MAILBOX, "VLeads")
    finally:
        led.close()
    assert cursor["sync_state"] and cursor["folder_id"] == ews.folder(MAILBOX, "VLeads").id

    syncs = ews.count("SyncFolderItems")
    assert home.run_once().get("done") == 3  # a restart: nothing fetched or done again
    assert ews.mime_reads == 3 and ews.count("UpdateItem") == 3
    # Only the changes since the stored state came back (at most our own three category updates,
    # two a page, in VLeads; one empty answer for each other folder): nothing was listed from scratch.
    assert ews.count("SyncFolderItems") - syncs <= 5

    ews.deliver(MAILBOX, "VLeads", mail(4))
    ews.expire_sync_states()
    assert home.run_once().get("done") == 4
    assert ews.mime_reads == 4  # the resync listed all four; only the new one was read
    assert len(emails(home)) == 4 and len(home.dump()["leads"]) == 4
    assert ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]] * 4


def test_throttling_is_waited_out_as_the_server_asks(ews, tmp_path):
    home = home_with(tmp_path, "h", ews_source(ews))
    ews.deliver(MAILBOX, "VLeads", mail(1))
    ews.throttle(2, 0.3, "fault")  # ErrorServerBusy, BackOffMilliseconds=300
    ews.throttle(1, 1.0, "503")  # HTTP 503, Retry-After: 1
    assert home.run_once().get("done") == 1
    assert ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]]
    assert len(ews.throttled) == 3
    times = [t for t, _op, _mb in ews.requests]
    for when, backoff in ews.throttled:
        following = min(t for t in times if t > when)
        assert following - when >= backoff - 0.01


def test_server_busy_during_the_version_probe_is_waited_out_as_asked(ews, tmp_path, caplog):
    home = home_with(tmp_path, "h", ews_source(ews, build=None))  # no build: exchangelib probes the version
    ews.deliver(MAILBOX, "VLeads", mail(1))
    ews.throttle(1, 1.5, "fault")  # the probe is the first request: ErrorServerBusy, BackOffMilliseconds=1500
    gw = home.gateway()
    try:
        with caplog.at_level(logging.INFO, logger="gateway.ews"):
            assert gw.run_once().get("done") == 1
        status = gw.sources[0].status()
    finally:
        gw.close()
    probes = [t for t, op, _mb in ews.requests if op == "ConvertId"]
    [(busy_at, asked)] = ews.throttled
    assert asked == 1.5 and len(probes) >= 2 and probes[0] <= busy_at
    assert probes[1] - probes[0] >= asked - 0.01  # the double's clock: the next probe waited as asked
    assert status["throttled"] == 1
    assert "server busy (ErrorServerBusy) while connecting to sales@example.com" in status["last_throttle"]
    assert "backing off 1.50s as asked" in caplog.text and "TransportError" not in caplog.text
    assert ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]]


def test_a_dropped_connection_is_retried(ews, tmp_path):
    home = home_with(tmp_path, "h", ews_source(ews))
    ews.deliver(MAILBOX, "VLeads", mail(1))
    ews.drop_next(2)
    assert home.run_once().get("done") == 1
    assert ews.categories(MAILBOX, "VLeads") == [["CRM sync", "Synced"]]


def test_clear_errors_for_credentials_rights_and_missing_folders(ews, tmp_path):
    wrong = home_with(tmp_path, "a", ews_source(ews, password="nope")).gateway()
    with pytest.raises(EwsError, match="wrong credentials for 'svc-crm'"):
        wrong.sources[0].scan_once()
    wrong.close()

    ews.allowed.discard(MAILBOX)
    denied = home_with(tmp_path, "b", ews_source(ews)).gateway()
    with pytest.raises(EwsError, match="may not impersonate sales@example.com"):
        denied.sources[0].scan_once()
    denied.close()
    ews.allowed.add(MAILBOX)

    missing = home_with(tmp_path, "c", ews_source(ews, create_folders=False)).gateway()
    with pytest.raises(EwsError, match="folder 'VLeads' is missing in sales@example.com"):
        missing.sources[0].scan_once()
    missing.close()
    assert ews.folder(MAILBOX, "VLeads") is None


def test_a_rule_that_moves_sets_the_categories_then_moves_the_item(ews, tmp_path):
    home = home_with(tmp_path, "h", ews_source(ews))
    moving_leads_to(home, "Archive")
    with Running(home):
        ews.deliver(MAILBOX, "VLeads", mail(1))
        assert wait_until(lambda: ews.categories(MAILBOX, "Archive") == [["CRM sync", "Synced"]], 30)
    assert ews.categories(MAILBOX, "VLeads") == []
    assert home.states() == {"done": 1} and len(emails(home)) == 1
    assert home.location_tags("Archive") == [["CRM sync", "Synced"]]  # the ledger follows the item
