"""The seam between the gateway and its mailboxes, whatever their protocol.

A mailbox kind (gateway/mailboxes/<kind>/) gives a `Source`, which finds copies of mails and
hands them over, and a `Writeback`, which tags or moves a copy once its CRM work is
committed. Both speak of a copy by its `SourceRef`. Nothing here knows a protocol, the
engine or a CRM: what a mailbox needs to know of the rules comes in as `RuleFacts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any, Protocol

from gateway.errors import GatewayError, Retryable


@dataclass(frozen=True)
class SourceRef:
    """A copy's location: (source, account, folder, UIDVALIDITY, UID) for IMAP, (source,
    account, folder, immutable item id) for Exchange/Graph, (source, account, folder, path
    key) for Maildir, (source, user, folder, spool name) for SMTP."""

    source: str
    account: str
    folder: str
    item_key: str
    uidvalidity: int = 0

    def label(self) -> str:
        uv = f";UIDVALIDITY={self.uidvalidity}" if self.uidvalidity else ""
        return f"{self.source}:{self.account}/{self.folder}{uv}/{self.item_key}"


# submit(ref, spooled file) → returns once the ledger has the location (durable)
Submit = Callable[[SourceRef, Path], None]


class Source(Protocol):
    name: str
    type: str

    def run(self, submit: Submit, stop: Event) -> None:
        """Hand over what is there now, then what arrives, until `stop` is set."""

    def scan_once(self, submit: Submit, progress: Callable[[int, int], None] | None = None) -> int:
        """Hand over what is there now and return; `progress(done, total)` for a bar."""

    def status(self) -> dict[str, Any]: ...


class RuleFacts(Protocol):
    """What the rules can do to a mailbox, as plain facts (gateway.engine.facts makes them): a
    mailbox decides with them what its protocol makes of a tag or a move, without reading rules."""

    @property
    def tags(self) -> Sequence[tuple[str, str]]: ...  # (tag, FILE:LINE:COL of its name) for each tag a rule can set

    @property
    def movers(self) -> Sequence[str]: ...  # the rules that can move a mail: "'name' (FILE:LINE:COL)"


@dataclass(frozen=True)
class SourceEnv:
    config: Any  # gateway.config.Config
    ledger: Any  # gateway.ledger.Ledger
    spool: Any  # gateway.spool.Spool
    submit_bytes: Callable[..., int]  # (ref, raw) → location id, once durable (spool fsync + ledger row)
    # [(ref, raw bytes or a file Path, declared_size)] → location ids, made durable together
    submit_many: Callable[..., list[int]] | None = None
    # what the rule files in force can do, read when asked (the rules change while a source runs)
    rule_facts: Callable[[], RuleFacts] | None = None


@dataclass(frozen=True)
class Applied:
    """Where the message is after the write-back (None: gone, so it stays untagged) and its tags."""

    ref: SourceRef | None
    tags: frozenset[str]
    note: str = ""


def tags_after(current: Set[str], add: Set[str], remove: Set[str]) -> frozenset[str]:
    """The tags a message carries once `add` is set and `remove` cleared."""
    return (frozenset(current) | frozenset(add)) - frozenset(remove)


def categories_after(have: Sequence[str], add: Set[str], remove: Set[str]) -> list[str]:
    """A mailbox's category list once `add` is set and `remove` cleared (Exchange, Graph): the
    categories there keep their order, new ones follow sorted, so a repeat writes nothing."""
    return [c for c in have if c not in remove] + sorted(c for c in add if c not in have)


@dataclass(frozen=True)
class TagRequest:
    """One copy's write-back: set `add`, clear `remove`, then move."""

    ref: SourceRef
    current: frozenset[str]
    add: frozenset[str]
    remove: frozenset[str]
    move: str | None
    message_id: str


def apply_each(writeback: Writeback, requests: Sequence[TagRequest]) -> list[Applied | Retryable]:
    """Write back several copies: in one call where the write-back has `apply_many` (IMAP:
    one STORE for many UIDs), else one by one; a failure is that copy's Retryable, in its place."""
    many = getattr(writeback, "apply_many", None)
    if many is not None and len(requests) > 1:
        return list(many(requests))
    out: list[Applied | Retryable] = []
    for r in requests:
        try:
            out.append(writeback.apply(r.ref, r.current, r.add, r.remove, r.move, r.message_id))
        except GatewayError as exc:  # that copy's failure; the others go on
            out.append(exc)  # type: ignore[arg-type]
    return out


class Writeback(Protocol):
    keeps_tags_in_mailbox: bool

    def apply(self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str],
              move: str | None, message_id: str) -> Applied:
        """Idempotent: set `add`, clear `remove`, then move. Raises Retryable when the mailbox
        cannot be reached. A message no longer at `ref` is looked up by `message_id`."""

    # Optional: `apply_many(requests: Sequence[TagRequest]) -> list[Applied | Retryable]`, the
    # same for several copies at once (see `apply_each`).


class LedgerOnly:
    """Tags kept in the ledger only: the source has nowhere to put them (Maildir, SMTP, files)."""

    keeps_tags_in_mailbox = False

    def apply(self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str],
              move: str | None, message_id: str) -> Applied:
        tags = tags_after(current, add, remove)
        if move and move != ref.folder:
            ref = SourceRef(ref.source, ref.account, move, ref.item_key, ref.uidvalidity)
        return Applied(ref, tags)
