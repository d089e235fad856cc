"""Two gateways on one PostgreSQL ledger and CRM, the same Maildir mailboxes configured in
both, spools in two folders (two "machines"): each mailbox watched by exactly one, a killed
gateway's mailboxes taken over and every mail finished once, a mail in mailboxes of both
gateways one CRM email with every copy tagged by its mailbox's holder."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from gateway.ledger import Ledger
from gateway.ledger.schema import locations, messages
from tests.crm.sql_backends import postgres_url
from tests.mail import make_mail
from tests.runtime.fixtures import Mailboxes, SharingGateway
from tests.waiting import wait_for

pytestmark = pytest.mark.postgres
N = 50  # the issue: "the same 50 mailboxes configured in both"


@pytest.fixture
def pair(tmp_path):
    boxes = Mailboxes(tmp_path / "mail", N)
    with postgres_url() as ledger_url, postgres_url() as crm_url:
        gws = [SharingGateway(tmp_path / name, name, ledger_url, crm_url, boxes.sources(boxes.names)) for name in ("gw1", "gw2")]
        try:
            yield boxes, gws, ledger_url
        finally:
            for g in gws:
                g.stop()


def copies(ledger_url):
    led = Ledger(ledger_url)
    try:
        with led.reader.connect() as c:
            return c.execute(
                locations.select()
                .with_only_columns(
                    locations.c.source, locations.c.state, locations.c.tags, messages.c.message_id, messages.c.state
                )
                .select_from(locations.join(messages, locations.c.message_pk == messages.c.id))
            ).all()
    finally:
        led.close()


def found_in(ledger_url, sources):
    led = Ledger(ledger_url)
    try:
        with led.reader.connect() as c:
            return len(c.execute(locations.select().where(locations.c.source.in_(sources))).all())
    finally:
        led.close()


def split_evenly(gw):
    holders = gw.holders()
    return None not in holders.values() and Counter(holders.values()) == {"gw1": N // 2, "gw2": N // 2}


def test_each_mailbox_watched_by_one_gateway_and_a_killed_ones_taken_over(pair):
    boxes, (gw1, gw2), ledger_url = pair
    gw1.start()
    assert wait_for(lambda: set(gw1.holders().values()) == {"gw1"}, timeout=60)
    gw2.start()  # joins: asks for its fair share, gw1 lets it go
    assert wait_for(lambda: split_evenly(gw1), timeout=90), gw1.holders()
    doc = gw2.status()
    assert {g["name"]: g["mailboxes"] for g in doc["gateways"] if g["live"]} == {"gw1": N // 2, "gw2": N // 2}
    assert all(s["leases"][0]["lease_expires_at"] for s in doc["sources"])

    for i, name in enumerate(boxes.names):
        boxes.drop(name, make_mail(sender=f"Before {i} <before{i}@p{i}.example>", message_id=f"<before{i}@x>"))
    assert wait_for(lambda: len(gw2.crm()["emails"]) == N, timeout=90)

    theirs = sorted(n for n, h in gw1.holders().items() if h == "gw1")
    for i, name in enumerate(boxes.names):  # in flight when gw1 dies: found, spooled or half done
        boxes.drop(name, make_mail(sender=f"During {i} <during{i}@d{i}.example>", message_id=f"<during{i}@x>"))
    # killed once it has found one of them at least (recorded, perhaps not yet done)
    assert wait_for(lambda: found_in(ledger_url, theirs) > len(theirs), timeout=60, step=0.02)
    gw1.kill()
    shutil.rmtree(gw1.root / "var" / "spool")  # its machine is gone: its spool with it
    for i, name in enumerate(boxes.names):
        boxes.drop(name, make_mail(sender=f"After {i} <after{i}@q{i}.example>", message_id=f"<after{i}@x>"))
    assert wait_for(lambda: set(gw2.holders().values()) == {"gw2"}, timeout=90), gw2.holders()
    assert wait_for(lambda: len(gw2.crm()["emails"]) == 3 * N, timeout=120)
    crm = gw2.crm()
    assert sorted(e["message_id"] for e in crm["emails"]) == sorted(
        f"<{when}{i}@x>" for when in ("before", "during", "after") for i in range(N)
    )
    assert len(crm["leads"]) == 3 * N
    assert wait_for(lambda: {r[4] for r in copies(ledger_url)} == {"done"}, timeout=60)
    assert theirs  # gw1 held some: they are gw2's now, and their mail went through once


def test_one_mail_in_mailboxes_of_both_gateways_is_one_email_and_every_copy_tagged(pair):
    boxes, (gw1, gw2), ledger_url = pair
    gw1.start()
    gw2.start()
    assert wait_for(lambda: split_evenly(gw1), timeout=90), gw1.holders()
    holders = gw1.holders()
    one = next(n for n, h in holders.items() if h == "gw1")
    two = next(n for n, h in holders.items() if h == "gw2")
    raw = make_mail(sender="Cc Both <both@c.example>", message_id="<both@x>")
    boxes.drop(one, raw)
    boxes.drop(two, raw)
    assert wait_for(lambda: len(gw1.crm()["emails"]) == 1, timeout=90)

    def all_tagged():
        rows = [r for r in copies(ledger_url) if r[3] == "<both@x>"]
        return len(rows) == 2 and all(r[1] == "applied" for r in rows)

    assert wait_for(all_tagged, timeout=90), copies(ledger_url)
    rows = copies(ledger_url)
    assert sorted(r[0] for r in rows) == sorted([one, two])
    assert all(r[2] != "[]" for r in rows)  # no copy recorded applied without its tags
    assert len(gw2.crm()["emails"]) == 1


def test_a_source_named_alike_but_reaching_another_mailbox_stops_the_start(pair, tmp_path):
    boxes, (gw1, _gw2), ledger_url = pair
    gw1.start()
    assert wait_for(lambda: set(gw1.holders().values()) == {"gw1"}, timeout=60)
    elsewhere = Mailboxes(tmp_path / "other-mail", N)
    crm_url = ledger_url  # never reached: the start stops before
    bad = SharingGateway(tmp_path / "gw3", "gw3", ledger_url, crm_url, elsewhere.sources(elsewhere.names))
    res = bad.cli("run")
    assert res.returncode != 0
    assert "source 'box0'" in res.stderr and "gw1" in res.stderr
    assert set(gw1.holders().values()) == {"gw1"}  # nothing taken from the running gateway
