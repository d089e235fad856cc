"""The connector contract and the value types that cross it.

A connector translates between these frozen values and one CRM. It raises only
`gateway.errors.Retryable` (network, timeout, 429/5xx, locked database) and
`gateway.errors.Permanent` (the CRM refused the data), never its library's exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from gateway.registry import Registry

PartyKind = Literal["lead", "contact", "account"]
PARTY_KINDS: tuple[PartyKind, ...] = ("lead", "contact", "account")
Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class PartyRef:
    """A record in the CRM that mail can be attached to."""

    kind: PartyKind
    id: str
    name: str = ""
    created_at: datetime | None = None

    def label(self) -> str:
        return f"{self.kind}:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name}


@dataclass(frozen=True)
class PartyData:
    """What a `create` writes. Accounts use `name`/`domain`; leads and contacts the rest."""

    kind: PartyKind
    emails: tuple[str, ...] = ()
    first_name: str = ""
    last_name: str = ""
    name: str = ""  # accounts: the company name; others: the display name as found
    company: str = ""  # leads: the company (the domain when nothing better is known)
    domain: str = ""  # accounts: the domain their people write from
    owner: str = ""  # the CRM user the record is assigned to
    account: PartyRef | None = None  # contacts/leads: the account to link to
    fields: Mapping[str, str] = field(default_factory=dict)  # extra fields from the rule


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    size: int
    sha256: str
    payload: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class EmailRecord:
    """One mail as the CRM stores it."""

    message_id: str
    content_hash: str  # hash of bodies and attachments: copies in two mailboxes agree
    subject: str
    from_address: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime  # aware, in UTC
    date_offset_minutes: int  # the sender's original UTC offset
    direction: Direction
    text: str
    html: str  # already sanitised
    raw: bytes = field(repr=False, default=b"")  # the whole .eml
    attachments: tuple[AttachmentData, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    owner: str = ""
    raw_sha256: str = ""  # of `raw`
    # The sha256 values were computed by the gateway from these very bytes (`raw`, each
    # payload): a connector may use them as they are. Else they are hints from upstream.
    hashes_verified: bool = False


@dataclass(frozen=True)
class EmailRef:
    id: str
    message_id: str
    content_hash: str = ""


@dataclass(frozen=True)
class NoteData:
    """What an `add_note` writes on each record: a short text a person reads in the CRM.

    `key` identifies this note for the gateway: it derives it from what made the note (the
    mail's content hash and the rule step), so the same note asked for again (a crash replay,
    a retry) has the same key, and another note another key. The CRM keeps at most one note
    per (key, record). A connector whose CRM has no field for it carries `note_marker.tag(key)`
    in a trailing marker line of the text (gateway/crm/note_marker.py).
    """

    key: str
    text: str
    title: str = ""  # a subject line where the CRM has one, else the text's first line
    owner: str = ""  # the CRM user the note is assigned to, where the CRM assigns notes
    message_id: str = ""  # the mail the note was made from, kept for reference where the CRM can


@dataclass(frozen=True)
class NoteRef:
    """The notes one `add_note` made or found: their CRM ids, one per record where the CRM
    keeps a note per record (one in all where it keeps one note linked to several)."""

    key: str
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ForgetReport:
    """What `forget ADDRESS` removed from the CRM."""

    parties: tuple[PartyRef, ...] = ()
    emails_removed: int = 0
    emails_unlinked: int = 0


@dataclass(frozen=True)
class RecordHit:
    """A record a search found, with what a person picks it by."""

    ref: PartyRef
    emails: tuple[str, ...] = ()
    domain: str = ""  # accounts
    owner: str = ""  # the CRM user it is assigned to ("": nobody, shared)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.ref.as_dict(),
            "record": self.ref.label(),
            "emails": list(self.emails),
            "domain": self.domain,
            "owner": self.owner,
        }


@runtime_checkable
class Connector(Protocol):
    """One CRM. Every method is safe to call again after a crash (see DESIGN.md's journal)."""

    name: str

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        """Records whose email addresses include `address` (case-insensitive, exact)."""

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        """Accounts whose domain is `domain`."""

    def create(self, kind: PartyKind, data: PartyData) -> PartyRef: ...

    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        """Store `mail` linked to every parent; idempotent per (message_id, content_hash).

        Attaching the same mail again adds only the links that are missing. A stored email
        with the same Message-ID but other content is a version: stored on its own.
        The email counts as attached only when every attachment is stored.

        `first_attempt`: the gateway's journal guarantees no earlier call for this mail, so
        a connector whose look-up of what is stored costs a request may skip it. Given only
        to connectors that set `wants_first_attempt_hint = True` (it costs the gateway a
        ledger write per message to know it).
        """

    # Optional: `search(text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None,
    # limit: int) -> list[RecordHit]`, records whose name, address or domain contains `text`,
    # of these kinds, visible to one of `users` (None: to anyone); and `visible_to(ref,
    # users) -> bool`. The console and the API use them through `search_records` and
    # `record_visible` below, which say plainly when a backend has neither.

    # Optional: `attach_many(items: Sequence[tuple[Sequence[PartyRef], EmailRecord]]) -> list[EmailRef]`,
    # `attach` for several mails at once, all or none (one transaction). The gateway batches
    # its attaches through it where a connector has it, and one by one otherwise
    # (`attach_each` below).

    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """Put `note` on every parent; idempotent per (`note.key`, parent).

        The key is why a replay is safe: the gateway journals its intent, calls, and after a
        crash calls again with the same key, not knowing which records got the note. The
        connector looks up which parents hold a note with this key already and writes only
        on the others: never a second note on a record. Another key is another note, even
        with the same text. A parent that does not exist is `Permanent`.
        """

    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None: ...

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        """The records that the stored emails with these Message-IDs are linked to."""

    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        """Erase a person: records with this address that `made_by_gateway` accepts, with the
        notes on them and the mails stored only for them; other records just lose the
        address's mail links (and keep their notes)."""

    def close(self) -> None: ...


@runtime_checkable
class EmailLookup(Protocol):
    """Optional capability of a connector: the emails stored for many Message-IDs in one go
    (`reconcile` checks thousands at once: missing ones, and mails stored twice). A connector
    without it is asked `find_email` one mail at a time, which cannot see a second record."""

    def emails_for(self, message_ids: Sequence[str]) -> Mapping[str, Sequence[EmailRef]]:
        """Message-ID → every email record stored with it (each version and each duplicate);
        a Message-ID with none is left out."""
        ...


ConnectorFactory = Callable[[Any], Connector]
CONNECTORS: Registry[ConnectorFactory] = Registry("connector", "gateway.crm")


def register_connector(backend: str) -> Callable[[ConnectorFactory], ConnectorFactory]:
    """Register a connector factory under its `crm.backend` name (a duplicate fails at import)."""
    return CONNECTORS.register(backend)


def connector_backends() -> list[str]:
    return CONNECTORS.names()


def make_connector(crm_config: Any) -> Connector:
    """Build the connector `crm_config.backend` names (its module registers itself on import)."""
    factory = CONNECTORS.get(crm_config.backend)
    if factory is None:
        from gateway.errors import ConfigError

        raise ConfigError(
            f"crm.backend: unknown backend {crm_config.backend!r} (known: {', '.join(connector_backends()) or 'sql'})"
        )
    return factory(crm_config)


def attach_each(crm: Connector, items: Sequence[tuple[Sequence[PartyRef], EmailRecord]]) -> list[EmailRef]:
    """Attach several mails: in one call where the connector has `attach_many`, else one by one."""
    many = getattr(crm, "attach_many", None)
    if many is not None and len(items) > 1:
        return list(many(items))
    return [crm.attach(parents, mail) for parents, mail in items]


def search_records(
    crm: Connector, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int = 50
) -> list[RecordHit]:
    """Records found by name, address or domain, where the connector can search."""
    search = getattr(crm, "search", None)
    if search is None:
        from gateway.errors import NotSupported

        raise NotSupported(f"the {crm.name} CRM connector cannot search records; look the record up in the CRM itself")
    return list(search(text, kinds, users, limit))


def record_visible(crm: Connector, ref: PartyRef, users: frozenset[str] | None) -> bool:
    """Whether one of `users` (None: anyone) may see the record in the CRM."""
    if users is None:
        return True
    visible = getattr(crm, "visible_to", None)
    if visible is None:
        from gateway.errors import NotSupported

        raise NotSupported(f"the {crm.name} CRM connector cannot tell who may see a record: only an admin may pick one")
    return bool(visible(ref, users))
