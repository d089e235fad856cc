"""The seam between the gateway and its mailboxes, whatever their protocol.

A mailbox kind (gateway/mailboxes/<kind>/) gives a `Source`, which finds copies of mails and
hands them over, and a `Writeback`, which tags or moves a copy once its CRM work is
committed. Both speak of a copy by its `SourceRef`. Nothing here knows a protocol, the
engine or a CRM: what a mailbox needs to know of the rules comes in as `RuleFacts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from threading import Event
from typing import Any, Protocol, runtime_checkable

from gateway.errors import GatewayError, Permanent, Retryable
from gateway.ledger.refs import SourceRef
from gateway.mailboxes.schedule import Schedule

# Threads a process's mailbox watchers use for blocking work (logins, scans), whatever the
# number of mailboxes: the ledger's connection pool is sized with it (gateway/runtime/parts.py).
WATCH_THREADS = 8


@dataclass(frozen=True)
class FolderRef:
    """A folder of a source's mailbox: what a cursor or a set of known keys belongs to."""

    source: str
    account: str
    folder: str


class Source(Protocol):
    name: str
    type: str

    def run(self, stop: Event) -> None:
        """Hand over what is there now, then what arrives, until `stop` is set."""

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
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
class Found:
    """A copy a source found: where, and its bytes (or the file holding them)."""

    ref: SourceRef
    raw: bytes | Path
    declared_size: int | None = None  # `raw` is only the headers of a mail this big (not fetched)


class IntakePort(Protocol):
    """All a source may ask of the gateway: hand copies over, keep its place in a folder,
    ask what is known. The gateway's runtime answers it; a source sees no ledger or spool."""

    def hand_over(self, found: Sequence[Found]) -> list[int]:
        """Durable (spooled and recorded together) when this returns, then queued, waiting for
        room; raises a Retryable once the gateway is stopping (the scan ends there)."""
        ...

    def hand_over_now(self, found: Found) -> int:
        """Durable when this returns; never waits for queue room (an SMTP answer). Concurrent
        callers share one fsync round and one ledger transaction."""
        ...

    def cursor(self, ref: FolderRef) -> dict[str, Any] | None:
        """Where the source stopped in this folder (its own format), None the first time."""
        ...

    def advance(self, ref: FolderRef, cursor: dict[str, Any]) -> None: ...

    def is_known(self, ref: SourceRef) -> bool:
        """Whether this copy has been handed over before."""
        ...

    def known_keys(self, ref: FolderRef) -> set[str]:
        """The item keys of the copies handed over from this folder."""
        ...

    def seen_in(self, message_id: str, ref: FolderRef) -> bool:
        """Whether a copy of the mail with this Message-ID was handed over from this folder."""
        ...

    def holds(self, source: str, account: str) -> bool:
        """Whether this gateway watches that mailbox now. Always so for a gateway alone on
        its ledger; gateways sharing one divide the mailboxes by lease, and a source stops
        watching (and does not start) a mailbox this answers False for."""
        ...


@dataclass(frozen=True)
class SourceEnv:
    """What a mailbox kind's `make` gets from the gateway."""

    intake: IntakePort
    max_message_size: int  # bytes; a bigger mail is handed over as its headers with its size
    resolve: Callable[[str | Path], Path]  # a path of the config, relative to the config's folder
    tag_keywords: Mapping[str, str] = field(default_factory=dict)  # config `tags.keywords`: a tag's IMAP keyword
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

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        """Idempotent: set `add`, clear `remove`, then move. Raises Retryable when the mailbox
        cannot be reached. A message no longer at `ref` is looked up by `message_id`."""

    # Optional: `apply_many(requests: Sequence[TagRequest]) -> list[Applied | Retryable]`, the
    # same for several copies at once (see `apply_each`).


@dataclass(frozen=True)
class Held:
    """A copy a folder holds now, as a listing of the folder sees it (`reconcile`)."""

    ref: SourceRef
    message_id: str = ""  # "" where the listing does not read headers (Maildir: the ledger knows it)
    # What the mailbox shows on the copy, in its own spelling (IMAP keywords, Exchange and Graph
    # categories); None where the tags are kept in the ledger only (Maildir, a folder without
    # keywords, Gmail labels)
    marks: frozenset[str] | None = None


@dataclass(frozen=True)
class FolderListing:
    """What one folder of one mailbox holds now."""

    where: FolderRef
    items: tuple[Held, ...]
    uidvalidity: int = 0  # IMAP: the folder's, the one every `items` ref carries
    note: str = ""  # why it holds nothing it could show (the folder does not exist)


@runtime_checkable
class Lister(Protocol):
    """Optional capability of a source: list what its watched folders hold now, in bulk (one
    request per folder, not per message), for `reconcile` to compare with the ledger."""

    def listings(
        self,
        folder: str | None = None,
        since: datetime | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[FolderListing]:
        """Each watched folder (only `folder` when given) of each mailbox the source reaches;
        `since`: only the copies that arrived then or later; `progress(label, done, total)`."""
        ...

    def marks_for(self, tags: Set[str]) -> frozenset[str]:
        """How these ledger tags show on a copy in this mailbox (`Held.marks`' spelling)."""
        ...


@runtime_checkable
class Refetch(Protocol):
    """Optional capability of a write-back: a copy's bytes (or its file) again, from the mailbox;
    None when it is no longer there. Used for a copy another machine spooled, and by
    `reconcile --fix` for a copy the ledger never recorded."""

    def fetch(self, ref: SourceRef) -> bytes | Path | None: ...


@runtime_checkable
class MessageFinder(Protocol):
    """Optional capability of a source: the copy of one mail in one of its mailboxes, found by
    its Message-ID with a search on the server (not a listing): in the inbox, the watched
    folders and the sent mail, where the mail a person reads lies. For a mail the gateway
    never handled that a person files on a record by hand (`POST /api/v1/link`, the Outlook
    add-in). None when that mailbox holds no such mail; raises Retryable when it cannot be
    reached."""

    def reachable(self) -> list[str]:
        """The mailboxes (accounts) it can search now: its roster read when it has not been yet
        (a command or the console may ask before the source ever ran)."""
        ...

    def find_message(self, account: str, message_id: str) -> Found | None: ...


MESSAGE_ID_MAX = 998  # RFC 5322's longest line: no real Message-ID is longer


def checked_message_id(text: str) -> str:
    """A Message-ID a person typed (the API, the add-in, `link`), fit to go into a mailbox's
    search: printable ASCII, no spaces, at most 998 characters. A CR or LF would end an IMAP
    command and start another one in the gateway's session; Permanent in words otherwise."""
    mid = text.strip()
    if not mid:
        raise Permanent("the Message-ID is empty")
    if len(mid) > MESSAGE_ID_MAX or not all(33 <= ord(c) <= 126 for c in mid):
        raise Permanent(
            "not a Message-ID: give it as the mail's header shows it, e.g. <abc123@example.com> "
            f"(printable ASCII without spaces, at most {MESSAGE_ID_MAX} characters)"
        )
    return mid


def same_message_id(a: str, b: str) -> bool:
    """Whether two Message-IDs name one mail: the angle brackets and the case of the domain
    part aside (a server's search may match a substring; this is the exact check)."""

    def norm(m: str) -> str:
        local, _, domain = m.strip().strip("<>").rpartition("@")
        return f"{local}@{domain.lower()}" if local else domain

    return bool(a.strip()) and norm(a) == norm(b)


class Reach(StrEnum):
    """How a source stands to an address's calendar (`Availability.reach`)."""

    OWN = "own"  # the address's mailbox is this source's (its owner, its CRM user, on its roster)
    ORGANISATION = "organisation"  # another mailbox of the same organisation: the server answers for it too
    NONE = "none"


@runtime_checkable
class Availability(Protocol):
    """Optional capability of a source: when people are free or busy, from their calendars
    (EWS GetUserAvailability, Graph getSchedule), so a CRM can offer a meeting time."""

    def reach(self, address: str) -> Reach:
        """Whether this source can answer for `address` (lower-case), and how well."""
        ...

    def free_busy(self, addresses: Sequence[str], start: datetime, end: datetime, interval: int) -> list[Schedule]:
        """One Schedule per address, in order, over [start, end) (aware times); an address the
        server could not answer for is a Schedule with its `error`. Raises Retryable when the
        server cannot be reached, Permanent when it refuses the service account."""
        ...


class LedgerOnly:
    """Tags kept in the ledger only: the source has nowhere to put them (Maildir, SMTP, files)."""

    keeps_tags_in_mailbox = False

    def apply(
        self, ref: SourceRef, current: Set[str], add: Set[str], remove: Set[str], move: str | None, message_id: str
    ) -> Applied:
        tags = tags_after(current, add, remove)
        if move and move != ref.folder:
            ref = SourceRef(ref.source, ref.account, move, ref.item_key, ref.uidvalidity)
        return Applied(ref, tags)
