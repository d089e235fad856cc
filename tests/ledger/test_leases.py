"""The lease table on SQLite and PostgreSQL: acquire, renew, expire, take over, fair share,
release on stop, and the refusal of a source that means other mailboxes on another gateway."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from gateway.errors import ConfigError
from gateway.ledger import Ledger
from gateway.ledger.leases import Leases, Mailbox, lease_rows
from tests.crm.sql_backends import postgres_url
from tests.waiting import wait_for

LEASE = 1.0  # seconds: expiry is waited for by polling, never timed
BOXES = [Mailbox("mail", f"user{i}@example.com") for i in range(4)]


@contextmanager
def ledger_at(kind, tmp_path):
    if kind == "sqlite":
        led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
        try:
            yield led
        finally:
            led.close()
    else:
        with postgres_url() as url:
            led = Ledger(url)
            try:
                yield led
            finally:
                led.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request, tmp_path):
    with ledger_at(request.param, tmp_path) as led:
        yield led


def gateway(ledger, name, sources=None):
    g = Leases(ledger, name, LEASE)
    g.join("host", 1, sources or {"mail": "imap host=mail.example.com"})
    return g


def owners(ledger):
    return {r.mailbox: r.owner for r in lease_rows(ledger)}


def test_a_gateway_alone_takes_every_mailbox_and_renews_them(ledger):
    g1 = gateway(ledger, "g1")
    first = g1.turn(BOXES)
    assert first.held == set(BOXES) and first.taken == set(BOXES) and first.share == 4 and first.live == 1
    expiry = {r.mailbox: r.expires_at for r in lease_rows(ledger)}
    again = g1.turn(BOXES)
    assert again.held == set(BOXES) and not again.taken  # renewed, not taken anew
    assert all(r.expires_at >= expiry[r.mailbox] for r in lease_rows(ledger))
    assert set(owners(ledger).values()) == {"g1"}


def test_a_held_mailbox_is_not_taken_until_its_lease_expires(ledger):
    g1 = gateway(ledger, "g1")
    g1.turn(BOXES)
    g2 = gateway(ledger, "g2")
    assert g2.take(BOXES[0]) is False  # compare-and-set: g1's lease runs
    # g1 stops renewing (killed): once its heartbeat and leases expire, g2 takes all of them
    assert wait_for(lambda: g2.turn(BOXES).held == set(BOXES), timeout=30)
    assert set(owners(ledger).values()) == {"g2"}
    assert g1.turn(BOXES).held == set()  # g1 comes back: nothing is its own any more, it asks


def test_a_joining_gateway_gets_a_fair_share_asked_for_and_let_go(ledger):
    g1 = gateway(ledger, "g1")
    assert g1.turn(BOXES).held == set(BOXES)
    g2 = gateway(ledger, "g2")
    asking = g2.turn(BOXES)
    assert asking.held == set() and asking.share == 2 and asking.live == 2
    t1 = g1.turn(BOXES)
    assert len(t1.let_go) == 2 and len(t1.held) == 2 and t1.held.isdisjoint(t1.let_go)
    g1.release(t1.let_go)  # the runtime lets go once its sources stopped watching them
    t2 = g2.turn(BOXES)
    assert t2.held == t1.let_go and t2.taken == t1.let_go
    assert g1.turn(BOXES).held == t1.held and g2.turn(BOXES).held == t1.let_go  # stable from then on
    assert sorted(owners(ledger).values()) == ["g1", "g1", "g2", "g2"]


def test_a_stopping_gateway_releases_its_mailboxes_at_once(ledger):
    g1 = gateway(ledger, "g1")
    g2 = gateway(ledger, "g2")
    g1.turn(BOXES)
    g2.turn(BOXES)
    g1.leave()
    assert g2.turn(BOXES).held == set(BOXES)  # free now, and g1 no longer counts in the share


def test_a_mailbox_only_one_gateway_wants_is_never_left_unwatched(ledger):
    mine = BOXES[:3]
    theirs = [Mailbox("other", "x@example.com")]
    g1 = gateway(ledger, "g1")
    g2 = gateway(ledger, "g2", {"other": "maildir path=/m"})
    g2.turn(theirs)
    # over its fair share of 4 mailboxes between 2 gateways, but never held by anyone: taken
    assert g1.turn(mine).held == set(mine)
    g1.release(mine[2:])  # let go (as if asked): free now, and g1 is at its share of 2
    assert g1.turn(mine).held == set(mine[:2])
    # free for a whole lease time and nobody else wants it: g1 takes it back
    assert wait_for(lambda: (g2.turn(theirs), g1.turn(mine))[1].held == set(mine), timeout=30)
    assert g2.turn(theirs).held == set(theirs)


def test_a_source_of_the_same_name_reaching_other_mailboxes_is_refused(ledger):
    gateway(ledger, "g1", {"mail": "imap host=a.example.com username=ann"})
    with pytest.raises(ConfigError, match="source 'mail'.*g1"):
        gateway(ledger, "g2", {"mail": "imap host=b.example.com username=ann"})
    gateway(ledger, "g3", {"mail": "imap host=a.example.com username=ann"})  # the same: welcome
