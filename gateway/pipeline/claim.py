"""Claim: read and parse new copies, and link them to their message identities.

Inserting the identity is the claim (DESIGN.md "Location first, identity second"): the copy
that inserts it is the message's primary and does its CRM work; a copy that finds it is one
more copy of a known mail. A batch's claims share one ledger transaction. At most
BATCH_BYTES of mail are parsed and held at once: a batch of big mails goes in parts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from gateway.config import Config
from gateway.errors import Permanent, UnparseableMessage
from gateway.ledger import Bind, Binding, Ledger, LocationRow, SourceRef
from gateway.ledger.spool import Spool, SpoolElsewhere
from gateway.ledger.states import MessageState as M
from gateway.mailboxes.base import Writeback
from gateway.message.parsing import Message, parse
from gateway.pipeline.budget import Stage
from gateway.pipeline.failure import Failure
from gateway.pipeline.hooks import Hooks
from gateway.pipeline.items import Claimed, Outcomes
from gateway.pipeline.recording import Recording

# Raw bytes a batch parses and holds at once (the parsed form needs about as much again): a
# batch of big mails is handled in parts, one mail alone when it is bigger than this.
BATCH_BYTES = 32 * 1024 * 1024


def by_size(locs: Sequence[LocationRow], budget: int) -> list[list[LocationRow]]:
    """Consecutive parts of `locs` whose spooled files add up to at most `budget` bytes each."""
    parts: list[list[LocationRow]] = []
    size = 0
    for loc in locs:
        try:
            n = os.path.getsize(loc.spool_path) if loc.spool_path else 0
        except OSError:
            n = 0  # gone: the parse step says so
        if not parts or (parts[-1] and size + n > budget):
            parts.append([])
            size = 0
        parts[-1].append(loc)
        size += n
    return parts


class Reader:
    """A copy's raw bytes from the spool, and the parsed message."""

    def __init__(
        self, config: Config, hooks: Hooks, spool: Spool | None = None, writebacks: Mapping[str, Writeback] | None = None
    ) -> None:
        self.config = config
        self.hooks = hooks
        self.spool = spool
        self.writebacks = writebacks or {}

    def read(self, path: str | None, ref: SourceRef | None = None) -> bytes:
        """The spooled file; when it is not on this machine (another gateway spooled it, and
        `ref` says where the copy lies), the copy fetched again from its mailbox."""
        if path:
            try:
                return Path(path).read_bytes()
            except FileNotFoundError:
                pass
        if ref is not None:
            fetch = getattr(self.writebacks.get(ref.source), "fetch", None)  # optional: the mailbox gives a copy again
            got = fetch(ref) if fetch is not None else None
            if got is not None:
                return got.read_bytes() if isinstance(got, Path) else bytes(got)
            if path and self.spool is not None and not self.spool.owns(path):
                raise SpoolElsewhere(f"{ref.label()} was spooled by another gateway ({path}) and cannot be fetched again here")
        if not path:
            raise Permanent("the raw message is no longer in the spool")
        raise Permanent(f"the raw message is no longer in the spool ({path})")

    def parse(self, raw: bytes, arrival: datetime | None, declared_size: int | None = None) -> Message:
        if self.hooks.slow_parse is not None:
            self.hooks.slow_parse(raw)
        if declared_size is not None and declared_size > self.config.max_message_size:
            message = parse(raw, arrival=arrival, max_size=0)  # only the headers were fetched
            return replace(message, raw_size=declared_size)
        return parse(raw, arrival=arrival, max_size=self.config.max_message_size)


class Claims:
    def __init__(self, ledger: Ledger, reader: Reader, failure: Failure, recording: Recording, hooks: Hooks) -> None:
        self.ledger = ledger
        self.reader = reader
        self.failure = failure
        self.recording = recording
        self.hooks = hooks

    def claim(self, locs: Sequence[LocationRow], out: Outcomes) -> list[Claimed]:
        """Parse new copies and link them to their message identities (insert = claim), in one
        ledger transaction. A copy nothing can parse is quarantined at once (`out` says so);
        so is a copy whose claim failed (`out` holds the failure)."""
        parsed: list[tuple[LocationRow, Message, bytes]] = []
        for loc in locs:
            raw: bytes | None = None
            started = time.monotonic()
            self.hooks.stage((loc.id,), Stage.PARSE)
            try:
                raw = self.reader.read(loc.spool_path, loc.ref)
                parsed.append((loc, self.reader.parse(raw, loc.seen_at, loc.declared_size), raw))
            except (UnparseableMessage, Permanent) as exc:
                try:
                    row = self.failure.unparseable(loc, raw, exc)
                    self.recording.log(loc, row, started)  # one `event=message` line, as for any other
                    out[loc.id] = M.QUARANTINED
                except Exception as failure:
                    out[loc.id] = failure
            except SpoolElsewhere as exc:  # the copy stays open; the sweep offers it again
                out[loc.id] = exc
        binds = [bind_of(loc, message) for loc, message, _ in parsed]
        self.hooks.stage([loc.id for loc, _, _ in parsed], Stage.CLAIM)
        try:
            bindings: list[Binding | Exception] = list(self.ledger.bind_many(binds)) if binds else []
        except Exception:
            if len(binds) < 2:
                raise
            bindings = []  # one claim the ledger refuses must not hold back the others
            for b in binds:
                try:
                    bindings.append(self.ledger.bind_many([b])[0])
                except Exception as exc:
                    bindings.append(exc)
        claimed: list[Claimed] = []
        for (loc, message, raw), binding in zip(parsed, bindings, strict=True):
            if isinstance(binding, Exception):
                out[loc.id] = binding
            else:
                claimed.append(Claimed(replace(loc, message_pk=binding.message_pk), binding.row, message, raw))
        return claimed


def bind_of(loc: LocationRow, message: Message, state: M = M.RECEIVED, reason: str = "") -> Bind:
    """The claim of a parsed copy: its message's identity, what the listings show of it."""
    keys = {a.key for a in (*message.from_, *message.sender, *message.to, *message.cc, *message.reply_to)}
    return Bind(
        loc.id,
        message.message_id,
        message.content_hash,
        subject=message.subject,
        from_address=message.from_[0].address if message.from_ else "",
        size=message.raw_size,
        addresses=keys,
        spool_path=loc.spool_path,
        state=state,
        reason=reason,
        label=loc.ref.label(),
    )
