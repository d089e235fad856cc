"""Gateways sharing one ledger divide the mailboxes by lease.

A row per mailbox (`leases`: owner, expiry) and a row per gateway (`gateways`: heartbeat,
the sources it runs). Every write is a short transaction of its own, and taking a mailbox
is one compare-and-set UPDATE (`… WHERE owner IS NULL OR owner = me OR expires_at < now`),
so no lock is held across work and two gateways never both win one mailbox. Times are the
database's (`now()` on PostgreSQL), so the clocks of the gateways' machines do not matter.

A gateway takes mailboxes up to its fair share, ceil(mailboxes wanted / live gateways).
One under its share asks (`requested_by`) for mailboxes another live gateway holds; that
one, over its share, lets them go (`release`), having stopped watching them first. A
mailbox free for a whole lease time is taken by anyone who wants it, share or not, so a
mailbox only one gateway has configured is never left unwatched.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.engine import Connection

from gateway.errors import ConfigError
from gateway.ledger.database import chunks, insert_ignore
from gateway.ledger.rows import aware, now
from gateway.ledger.schema import gateways, leases
from gateway.ledger.store import Ledger

EPOCH = datetime(1970, 1, 1, tzinfo=now().tzinfo)


@dataclass(frozen=True, order=True)
class Mailbox:
    """A watched mailbox: a source's name and the account it reaches, as in a SourceRef."""

    source: str
    account: str


@dataclass(frozen=True)
class LeaseRow:
    mailbox: Mailbox
    owner: str | None
    expires_at: datetime
    acquired_at: datetime | None
    requested_by: str | None = None
    requested_until: datetime | None = None


@dataclass(frozen=True)
class GatewayRow:
    name: str
    host: str
    pid: int
    started_at: datetime
    expires_at: datetime
    sources: Mapping[str, str]


@dataclass(frozen=True)
class Turn:
    """One round's result: the mailboxes held until (database time) `until`, the ones to let
    go (asked for by a gateway under its share), the share and how many gateways live."""

    held: frozenset[Mailbox]
    taken: frozenset[Mailbox]  # of `held`, the ones taken this round (their open work is new to us)
    let_go: frozenset[Mailbox]
    share: int
    live: int


def db_now(c: Connection) -> datetime:
    """The database's time: one clock for every gateway (SQLite: this machine's, the only one)."""
    if c.dialect.name == "postgresql":
        value = c.execute(text("SELECT now()")).scalar()
        assert isinstance(value, datetime)
        return value
    return now()


class Leases:
    def __init__(self, ledger: Ledger, me: str, lease: float) -> None:
        self.ledger = ledger
        self.me = me
        self.lease = timedelta(seconds=lease)

    # ---- this gateway ---------------------------------------------------------------------

    def join(self, host: str, pid: int, sources: Mapping[str, str]) -> None:
        """Say this gateway lives and which sources it runs (name → what it reaches). Refused
        with a ConfigError naming the source when a live gateway runs a source of that name
        reaching something else: two gateways' `mail` must be the same mailbox server."""
        with self.ledger.engine.begin() as c:
            t = db_now(c)
            for other in self._live(c, t):
                if other.name == self.me:
                    continue
                for name, identity in sources.items():
                    theirs = other.sources.get(name)
                    if theirs is not None and theirs != identity:
                        raise ConfigError(
                            f"source {name!r} is {identity} here but {theirs} on gateway {other.name!r}, which shares "
                            "this ledger: a source's name must mean the same mailboxes on every gateway"
                        )
            values = {
                "host": host,
                "pid": pid,
                "started_at": t,
                "expires_at": t + self.lease,
                "sources": json.dumps(dict(sources), sort_keys=True),
            }
            if not c.execute(update(gateways).where(gateways.c.name == self.me).values(**values)).rowcount:
                c.execute(insert(gateways).values(name=self.me, **values))

    def leave(self) -> None:
        """A stop: every mailbox this gateway held is free at once, and it no longer counts."""
        with self.ledger.engine.begin() as c:
            t = db_now(c)
            c.execute(
                update(leases)
                .where(leases.c.owner == self.me)
                .values(owner=None, expires_at=t, requested_by=None, requested_until=None)
            )
            c.execute(update(gateways).where(gateways.c.name == self.me).values(expires_at=t))

    def release(self, mailboxes: Collection[Mailbox]) -> None:
        """Let these go (this gateway stopped watching them): free for the asking gateway now."""
        with self.ledger.engine.begin() as c:
            t = db_now(c)
            for mb in mailboxes:
                c.execute(
                    update(leases)
                    .where(leases.c.source == mb.source, leases.c.account == mb.account, leases.c.owner == self.me)
                    .values(owner=None, expires_at=t, requested_by=None, requested_until=None)
                )

    # ---- one round ------------------------------------------------------------------------

    def turn(self, wanted: Collection[Mailbox]) -> Turn:
        """Heartbeat, renew what is held, take up to the fair share, ask for the rest of it,
        and say which held mailboxes another gateway asked for. Short transactions only."""
        with self.ledger.engine.begin() as c:
            t = db_now(c)
            c.execute(update(gateways).where(gateways.c.name == self.me).values(expires_at=t + self.lease))
            self._want(c, t, wanted)
            c.execute(update(leases).where(leases.c.owner == self.me).values(expires_at=t + self.lease))
            rows = _all(c)
            live = max(1, len(self._live(c, t)))
            total = c.execute(select(func.count()).select_from(leases).where(leases.c.wanted_until > t)).scalar() or 0
        share = math.ceil(total / live)
        want = set(wanted)
        unwanted = {r.mailbox for r in rows if r.owner == self.me and r.mailbox not in want}
        if unwanted:  # no longer configured here (the runtime stopped asking for them)
            self.release(unwanted)
        rows = [r for r in rows if r.mailbox in want]
        held = {r.mailbox for r in rows if r.owner == self.me}
        taken: set[Mailbox] = set()
        free = [r for r in rows if r.owner != self.me and (r.owner is None or r.expires_at < t)]
        random.shuffle(free)  # two gateways starting together do not contend for the same rows
        for r in free:
            long_free = r.expires_at < t - self.lease
            if (len(held) < share or long_free) and self.take(r.mailbox):
                held.add(r.mailbox)
                taken.add(r.mailbox)
        if len(held) < share:
            self._ask(rows, share - len(held))
        let_go: set[Mailbox] = set()
        if len(held) > share:
            asked = [
                r.mailbox
                for r in rows
                if r.owner == self.me and r.requested_by not in (None, self.me) and (r.requested_until or EPOCH) > t
            ]
            let_go = set(sorted(asked)[: len(held) - share])
        return Turn(frozenset(held - let_go), frozenset(taken - let_go), frozenset(let_go), share, live)

    def take(self, mb: Mailbox) -> bool:
        """Compare-and-set: this gateway owns the mailbox if nobody did, or its lease ran out."""
        with self.ledger.engine.begin() as c:
            t = db_now(c)
            return bool(
                c.execute(
                    update(leases)
                    .where(
                        leases.c.source == mb.source,
                        leases.c.account == mb.account,
                        or_(leases.c.owner.is_(None), leases.c.owner == self.me, leases.c.expires_at < t),
                    )
                    .values(owner=self.me, expires_at=t + self.lease, acquired_at=t, requested_by=None, requested_until=None)
                ).rowcount
            )

    def _want(self, c: Connection, t: datetime, wanted: Collection[Mailbox]) -> None:
        """Rows for the mailboxes this gateway wants, marked wanted (they count in the share)."""
        until = t + 3 * self.lease
        existing = {Mailbox(r.source, r.account) for r in c.execute(select(leases.c.source, leases.c.account))}
        missing = sorted(set(wanted) - existing)
        if missing:
            c.execute(
                insert_ignore(c, leases),
                [{"source": m.source, "account": m.account, "expires_at": EPOCH, "wanted_until": until} for m in missing],
            )
        # in one order on every gateway: two renewing at once never wait for each other in a circle
        for chunk in chunks(sorted(wanted)):
            keys = [(m.source, m.account) for m in chunk]
            c.execute(update(leases).where(tuple_(leases.c.source, leases.c.account).in_(keys)).values(wanted_until=until))

    def _ask(self, rows: Sequence[LeaseRow], n: int) -> None:
        """Ask the owners of up to `n` mailboxes this gateway wants for them."""
        with self.ledger.engine.begin() as c:
            t = db_now(c)
            live = {g.name for g in self._live(c, t)}
            theirs = [r for r in rows if r.owner not in (None, self.me) and r.owner in live]
            random.shuffle(theirs)
            for r in theirs:
                if n <= 0:
                    break
                n -= c.execute(
                    update(leases)
                    .where(
                        leases.c.source == r.mailbox.source,
                        leases.c.account == r.mailbox.account,
                        leases.c.owner == r.owner,
                        or_(leases.c.requested_by.is_(None), leases.c.requested_by == self.me, leases.c.requested_until < t),
                    )
                    .values(requested_by=self.me, requested_until=t + self.lease)
                ).rowcount

    # ---- reads ----------------------------------------------------------------------------

    def _live(self, c: Connection, t: datetime) -> list[GatewayRow]:
        return [g for g in all_gateways(c) if g.expires_at > t]

    def rows(self) -> list[LeaseRow]:
        with self.ledger.reader.connect() as c:
            return _all(c)

    def gateways(self) -> list[GatewayRow]:
        with self.ledger.reader.connect() as c:
            return all_gateways(c)

    def forget_gateway(self, name: str) -> None:
        """Drop a gateway's row (a test's or an admin's tidy-up); its leases stay until they expire."""
        with self.ledger.engine.begin() as c:
            c.execute(delete(gateways).where(gateways.c.name == name))


def _all(c: Connection) -> list[LeaseRow]:
    return [
        LeaseRow(
            Mailbox(r.source, r.account),
            r.owner,
            aware(r.expires_at) or EPOCH,
            aware(r.acquired_at),
            r.requested_by,
            aware(r.requested_until),
        )
        for r in c.execute(select(leases).order_by(leases.c.source, leases.c.account))
    ]


def all_gateways(c: Connection) -> list[GatewayRow]:
    return [
        GatewayRow(
            r.name,
            r.host,
            r.pid,
            aware(r.started_at) or EPOCH,
            aware(r.expires_at) or EPOCH,
            json.loads(r.sources or "{}"),
        )
        for r in c.execute(select(gateways).order_by(gateways.c.name))
    ]


def lease_rows(ledger: Ledger) -> list[LeaseRow]:
    """Who holds each mailbox (`status`), read without a gateway of one's own."""
    with ledger.reader.connect() as c:
        return _all(c)


def ledger_time(ledger: Ledger) -> datetime:
    with ledger.reader.connect() as c:
        return db_now(c)


def holder(ledger: Ledger, source: str, account: str) -> tuple[str | None, bool] | None:
    """Who holds a mailbox and whether that lease runs still, or None when no gateway leases it
    (the SMTP intake, `process FILE`, a source no gateway runs any more)."""
    with ledger.reader.connect() as c:
        t = db_now(c)
        row = c.execute(
            select(leases.c.owner, leases.c.expires_at).where(leases.c.source == source, leases.c.account == account)
        ).first()
    if row is None:
        return None
    return row.owner, row.owner is not None and (aware(row.expires_at) or EPOCH) > t
