"""Which mailboxes this gateway watches: leases in the ledger (gateway/ledger/leases.py),
renewed and taken by a supervised task, answered to the sources through `Intake.holds`.

A lease is held locally until a deadline on this machine's monotonic clock: the time the
renewal was sent plus the lease, minus a margin. The ledger's expiry is at least the lease
after that same moment, so a gateway that cannot renew (its database away, its task stuck)
stops watching a mailbox a margin before another gateway may take it over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from gateway.config import Config
from gateway.ledger import Ledger
from gateway.ledger.leases import Leases, Mailbox

log = logging.getLogger("gateway.service")
# The lease is renewed every third of its time; a gateway stops watching when a quarter is left.
_RENEW, _MARGIN = 1 / 3, 1 / 4
_WOKEN_GAP = 1.0  # seconds at least between rounds (a source asking about a new mailbox wakes one)
_FIRST_ANSWER = 10.0  # seconds a source asking about a new mailbox waits at most for that round
# What names the mailboxes a source reaches, whatever its kind (the rest of the config is how).
_IDENTITY_KEYS = ("host", "port", "url", "server", "path", "username", "tenant_id", "mailboxes")


def mailboxes_of(source: Any) -> list[Mailbox]:
    """The mailboxes a source watches: its `mailboxes` (EWS, Graph), or its one `account`
    (IMAP, Maildir). A source with neither (the SMTP intake listens, it watches no mailbox)
    runs on every gateway and is leased by none."""
    many = getattr(source, "mailboxes", None)
    if callable(many):
        many = many()
    if many is not None:
        return [Mailbox(source.name, str(m)) for m in many]
    account = getattr(source, "account", None)
    return [Mailbox(source.name, account)] if isinstance(account, str) else []


def source_identity(config: Config, name: str) -> str:
    """A source's kind and what it reaches, e.g. `imap host=mail.example.com username=ann`:
    two gateways' sources of one name must agree on it."""
    src = config.source(name)
    parts: list[str] = [src.type]
    for key in _IDENTITY_KEYS:
        value = getattr(src, key, None)
        if value in (None, "", []):
            continue
        if key == "path":
            value = str(config.resolve(str(value)).resolve())
        parts.append(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
    return " ".join(parts)


class LeaseKeeper:
    def __init__(self, config: Config, ledger: Ledger, sources: Sequence[Any], also: Sequence[Mailbox] = ()) -> None:
        self.config = config
        self.name = config.gateway_name
        self.lease = config.gateway.lease
        self.table = Leases(ledger, self.name, self.lease)
        self.sources = list(sources)
        self.also = list(also)  # leased like mailboxes, watched by no source: the address books the sync keeps
        self.on_taken: Callable[[Collection[Mailbox]], None] = lambda _mbs: None  # the scheduler recovers their work
        self._until: dict[Mailbox, float] = {}  # held until then (time.monotonic)
        self._leased: frozenset[Mailbox] = frozenset()  # every mailbox the ledger has a lease row for
        self._letting_go: set[Mailbox] = set()
        self._asked: set[Mailbox] = set()  # mailboxes the last round wanted
        self._wake = threading.Event()  # a source asks about a mailbox no round has seen: a round now
        self._rounds = 0  # rounds done, under `_turned`: a source asking about a new mailbox waits for one
        self._turned = threading.Condition()
        self._running = False  # the task runs (in `run`): a round will come
        self._lock = threading.Lock()
        self.last_error = ""

    def wanted(self) -> list[Mailbox]:
        return [mb for s in self.sources for mb in mailboxes_of(s)] + self.also

    # ---- what the sources and the scheduler ask ---------------------------------------------

    def holds(self, source: str, account: str) -> bool:
        mb = Mailbox(source, account)
        until = self._until.get(mb)
        if until is None and mb not in self._asked:
            # new on a source's roster (read after the start): a round for it now, and the answer
            # after it, so the source does not wait for its own next look to start watching
            if self._running:
                with self._turned:
                    seen = self._rounds
                    self._wake.set()
                    self._turned.wait_for(lambda: self._rounds > seen or not self._running, timeout=_FIRST_ANSWER)
            else:  # no task (`run --once`): the round here
                with self._lock:
                    if mb not in self._asked:
                        try:
                            self.turn()
                        except Exception as exc:
                            log.warning("gateway %s: leases not taken: %s", self.name, exc)
            until = self._until.get(mb)
        return until is not None and time.monotonic() < until

    def owns_work(self, source: str, account: str) -> bool:
        """Whether open work in this mailbox is this gateway's: it holds the mailbox, or no
        gateway leases it (the SMTP intake, `process FILE`)."""
        mb = Mailbox(source, account)
        return self.holds(source, account) or mb not in self._leased

    def held(self) -> list[Mailbox]:
        return sorted(mb for mb in self._until if self.holds(mb.source, mb.account))

    # ---- the task -----------------------------------------------------------------------------

    def join(self) -> None:
        """Say this gateway lives, with its sources; refused (ConfigError) when a live gateway
        runs a source of the same name reaching other mailboxes. Then the first round."""
        identities = {s.name: source_identity(self.config, s.name) for s in self.sources if mailboxes_of(s)}
        self.table.join(socket.gethostname(), os.getpid(), identities)
        self.turn()

    def turn(self) -> None:
        """One round: let go what was asked for last round (its watching has stopped since),
        renew, take, ask."""
        if self._letting_go:
            self.table.release(self._letting_go)
            log.info("gateway %s: let go of %s", self.name, ", ".join(f"{m.source}/{m.account}" for m in self._letting_go))
            self._letting_go = set()
        sent = time.monotonic()
        wanted = self.wanted()
        turn = self.table.turn(wanted)
        self._asked = set(wanted)
        until = sent + self.lease * (1 - _MARGIN)
        self._until = {mb: until for mb in turn.held}  # one assignment: readers see the old or the new
        self._letting_go = set(turn.let_go)
        self._leased = frozenset(r.mailbox for r in self.table.rows())
        self.last_error = ""
        if turn.taken:
            log.info(
                "gateway %s: watching %s (fair share %d, %d live gateways)",
                self.name,
                ", ".join(f"{m.source}/{m.account}" for m in sorted(turn.taken)),
                turn.share,
                turn.live,
            )
            self.on_taken(turn.taken)

    def run(self, stop: threading.Event) -> None:
        """Renew and take every third of the lease until stopped; a failed round is logged and
        the next one tried (meanwhile the deadlines lapse: the sources stop in time)."""
        self._running = True
        try:
            self._rounds_until(stop)
        finally:
            with self._turned:
                self._running = False
                self._turned.notify_all()

    def _rounds_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            due = time.monotonic() + self.lease * _RENEW
            stop.wait(_WOKEN_GAP)  # a woken round at most every second, however often a source asks
            while not stop.is_set() and not self._wake.is_set() and time.monotonic() < due:
                self._wake.wait(min(0.25, max(0.0, due - time.monotonic())))
            self._wake.clear()
            if stop.is_set():
                return
            try:
                self.turn()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning("gateway %s: leases not renewed: %s", self.name, self.last_error)
            with self._turned:  # whoever waits for a round: it is over, with or without success
                self._rounds += 1
                self._turned.notify_all()

    def leave(self) -> None:
        """At a stop, once the sources have ended: every mailbox free for the others at once."""
        self._until = {}
        try:
            self.table.leave()
        except Exception as exc:
            log.warning("gateway %s: leases not given back (they expire in %.0fs): %s", self.name, self.lease, exc)
