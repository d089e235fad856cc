"""What the ledger hands out and takes in: frozen rows of messages and copies, a claim's
binding, and the two batch writes' items (`Bind`, `Finish`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.ledger.refs import SourceRef
from gateway.ledger.states import LocationState, MessageState

MESSAGE_ID_MAX = 500  # the ledger's column; a longer Message-ID is kept cut, its identity hashed


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """A time read back from SQLite (which keeps no zone) as the UTC time it was written as."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MessageRow:
    id: int
    identity: str
    message_id: str
    content_hash: str
    # Always a MessageState once built; a plain string is taken (and turned into one) while
    # callers that `replace(row, state="done")` move over to the enum.
    state: MessageState | str
    reason: str
    attempts: int
    next_attempt_at: datetime | None
    spool_path: str | None
    primary_location: int | None
    subject: str
    from_address: str
    size: int
    # The message's last Plan as the pipeline stored it (`Plan.to_json`, as JSON text). The
    # ledger only keeps it: the Plan is the engine's, which the ledger may not import, so the
    # pipeline reads it back (`gateway.pipeline.journal.plan_of`).
    plan_json: str | None
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", MessageState(self.state))

    @classmethod
    def of(cls, row: Any) -> MessageRow:
        m = row._mapping
        return cls(
            id=m["id"],
            identity=m["identity"],
            message_id=m["message_id"],
            content_hash=m["content_hash"],
            state=m["state"],
            reason=m["reason"] or "",
            attempts=m["attempts"] or 0,
            next_attempt_at=aware(m["next_attempt_at"]),
            spool_path=m["spool_path"],
            primary_location=m["primary_location"],
            subject=m["subject"] or "",
            from_address=m["from_address"] or "",
            size=m["size"] or 0,
            plan_json=m["plan_json"] or None,
            created_at=aware(m["created_at"]),  # type: ignore[arg-type]
            updated_at=aware(m["updated_at"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class LocationRow:
    id: int
    message_pk: int | None
    ref: SourceRef
    state: LocationState
    spool_path: str | None
    declared_size: int | None
    tags_add: tuple[str, ...]
    tags_remove: tuple[str, ...]
    move_to: str | None
    tags: tuple[str, ...]
    seen_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", LocationState(self.state))

    @classmethod
    def of(cls, row: Any) -> LocationRow:
        m = row._mapping
        return cls(
            id=m["id"],
            message_pk=m["message_pk"],
            ref=SourceRef(m["source"], m["account"], m["folder"], m["item_key"], m["uidvalidity"] or 0),
            state=m["state"],
            spool_path=m["spool_path"],
            declared_size=m["declared_size"],
            tags_add=tuple(json.loads(m["tags_add"] or "[]")),
            tags_remove=tuple(json.loads(m["tags_remove"] or "[]")),
            move_to=m["move_to"],
            tags=tuple(json.loads(m["tags"] or "[]")),
            seen_at=aware(m["seen_at"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Binding:
    message_pk: int
    primary: bool  # this location made the message row: its worker does the CRM work
    state: MessageState  # the message's state at binding time
    row: MessageRow | None = None  # the message as the claim found or made it


@dataclass(frozen=True)
class Bind:
    """Link a copy (location) to its message identity: insert it (the copy is the primary) or join it."""

    location_pk: int
    message_id: str
    content_hash: str
    subject: str = ""
    from_address: str = ""
    size: int = 0
    addresses: Iterable[str] = ()
    spool_path: str | None = None
    state: MessageState | str = MessageState.PROCESSING  # a new message's first state
    reason: str = ""
    label: str = ""  # the copy's place, for the "another copy at …" event

    @property
    def identity(self) -> str:
        if len(self.message_id) > MESSAGE_ID_MAX:  # hostile: a hash of it names the mail as well
            digest = hashlib.sha256(self.message_id.encode("utf-8", "surrogatepass")).hexdigest()
            return f"<sha256:{digest}>|{self.content_hash}"
        return f"{self.message_id}|{self.content_hash}"


@dataclass(frozen=True)
class Finish:
    """A message's outcome: its CRM steps' results, its state and its primary copy's tags."""

    message_pk: int
    state: MessageState | str
    reason: str = ""
    plan_json: str | None = None  # the Plan to store (JSON text), None: keep the stored one
    results: dict[str, Any] | None = None
    location_pk: int | None = None
    tags: Sequence[str] = ()
    location_state: LocationState | str = LocationState.APPLIED
    planned: tuple[Sequence[str], Sequence[str], str | None] | None = None
    moved_to: SourceRef | None = None
    events_: Sequence[tuple[str, str]] = field(default_factory=tuple)
    results_are_new: bool = False  # steps that needed no intent (an idempotent attach): insert them
    marks: dict[str, Any] | None = None  # steps that have no intent of their own (crm_done)
