"""The connector contract: scenarios every CRM connector must pass, whatever the CRM.

Use it from a `test_<crm>_contract.py` beside this file:

    class TestTrytonContract(ConnectorContract):
        @pytest.fixture
        def connector(self, …): yield a connector on an empty CRM, closed afterwards
        @pytest.fixture
        def inspect(self, connector): return an `Inspector` reading that CRM

The tests talk to the CRM only through `gateway.crm.base.Connector` methods, plus the
small `Inspector` each connector's test supplies to read back what a user would see in the
CRM (an email's links and files, a record's owner and addresses, the gateway's notes on a
record) — the one thing the protocol has no read method for.

A connector that talks to its CRM over the network also supplies `far_side` (a `FarSide`,
e.g. `tests/crm/doubles/base.HttpDouble`) so the failure scenarios can make the CRM
misbehave, and its `connector` fixture takes the client timeout from the contract's `timeout`
fixture (generous: the machine may be busy; the stall scenario alone asks for a short one and
holds its request until the client has given up). Without `far_side` those scenarios skip.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import pytest

from gateway.crm.base import AttachmentData, Connector, EmailRecord, NoteData, PartyData, PartyRef
from gateway.errors import Permanent, Retryable

T = TypeVar("T")

# The client timeout of the connectors under test: a local server on a loaded machine may
# take seconds to answer, and a timeout is a fault only the stall scenario wants.
CLIENT_TIMEOUT = 30.0
# The stall scenario's: the far side holds its request until released, so the client surely
# gives up; short enough to keep the scenario quick, long enough for the scenario's other
# requests on a loaded machine (a Tryton login there took over 1 s, again and again).
STALL_TIMEOUT = 10.0
STALL_HOLD = 120.0  # the most a stalled request is held if nobody releases it

HOSTILE = (
    "o'brien@example.org",
    "back\\slash@example.org",
    '"quoted name"@example.org',
    "100%@example.org",
    "under_score@example.org",
    "zoë.müller@bücher.example",
)
# each of these must NOT match the hostile address above it (wildcards, case tricks)
LOOKALIKES = (
    "oXbrien@example.org",
    "backXslash@example.org",
    "Xquoted nameX@example.org",
    "100X@example.org",
    "underXscore@example.org",
    "zoe.muller@bucher.example",
)


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredEmail:
    id: str
    message_id: str
    subject: str
    from_address: str
    links: frozenset[tuple[str, str]]  # (kind, id) of the records it is attached to
    attachments: tuple[StoredFile, ...]


@dataclass(frozen=True)
class StoredParty:
    kind: str
    id: str
    owner: str
    emails: frozenset[str]  # as the CRM keeps them, compared case-insensitively by the tests


@dataclass(frozen=True)
class StoredNote:
    id: str
    title: str  # "" where the note has none
    text: str  # as a person reads it, without the marker a CRM with no key field carries


class Inspector(Protocol):
    """What a connector's test supplies to read the CRM behind the connector."""

    def emails(self, message_id: str) -> list[StoredEmail]:
        """Every stored email with this Message-ID (versions included), oldest first."""

    def party(self, ref: PartyRef) -> StoredParty | None: ...

    def notes(self, ref: PartyRef) -> list[StoredNote]:
        """The notes the gateway put on this record, oldest first ([] once it is erased)."""


class FarSide(Protocol):
    """The CRM's end of the wire, for the failure scenarios (see `doubles/base.py`)."""

    log: Sequence[Any]  # every request received, each with `.at` (the far side's monotonic clock)

    def fail_next(self, status: int, *, headers: dict[str, str] | None = None, body: bytes = b"", times: int = 1) -> None: ...

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next requests `seconds` at most, then drop them unanswered."""

    def release_stalls(self) -> None:
        """End held requests now."""

    def reject_next_write(self, message: str) -> None:
        """Refuse the next create the way this CRM reports a validation error, with `message`."""


def attachment(filename: str, payload: bytes, content_type: str = "application/octet-stream") -> AttachmentData:
    return AttachmentData(filename, content_type, len(payload), hashlib.sha256(payload).hexdigest(), payload)


def make_mail(
    message_id: str = "<m1@example.org>",
    body: str = "Hello, we would like a quote.",
    *,
    subject: str = "Quote",
    sender: str = "ann@acme.example",
    to: Sequence[str] = ("me@example.com",),
    cc: Sequence[str] = (),
    attachments: Sequence[AttachmentData] = (),
    direction: str = "inbound",
    owner: str = "me@example.com",
) -> EmailRecord:
    """A mail as the pipeline hands it over; `content_hash` follows the body and attachments."""
    h = hashlib.sha256(body.encode())
    for a in attachments:
        h.update(a.sha256.encode())
    raw = f"Message-ID: {message_id}\r\nFrom: {sender}\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()
    return EmailRecord(
        message_id=message_id,
        content_hash=h.hexdigest(),
        subject=subject,
        from_address=sender,
        from_name="Ann Lee",
        to=tuple(to),
        cc=tuple(cc),
        date=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        date_offset_minutes=60,
        direction=direction,  # type: ignore[arg-type]
        text=body,
        html=f"<p>{body}</p>",
        raw=raw,
        attachments=tuple(attachments),
        owner=owner,
    )


def person(kind: str, *emails: str, first: str = "Ann", last: str = "Lee", owner: str = "me@example.com") -> PartyData:
    return PartyData(kind=kind, emails=emails, first_name=first, last_name=last, company="acme.example", owner=owner)  # type: ignore[arg-type]


UNICODE_NOTE = "Zoë Müller asked for a quote:\n  – 3 × “Deluxe”, 東京 office\n\n\tthen call back ☎\nlast line "


def note(key: str = "mail-1/step-1", text: str = "Call back about the quote.", title: str = "Quote") -> NoteData:
    """A note as the gateway hands it over (its key: the mail's content hash and the rule step)."""
    return NoteData(key=key, text=text, title=title, owner="me@example.com", message_id="<m1@example.org>")


def eventually(call: Callable[[], T], limit: float = 120.0) -> T:
    """`call()`'s result, tried again after a Retryable until `limit` seconds have passed."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return call()
        except Retryable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def ids(refs: Sequence[PartyRef]) -> list[tuple[str, str]]:
    return [(r.kind, r.id) for r in refs]


class ConnectorContract:
    """The connector-agnostic scenarios. Subclass with `connector` and `inspect` fixtures."""

    @pytest.fixture
    def timeout(self) -> float:
        """The client timeout a `connector` fixture gives its connector."""
        return CLIENT_TIMEOUT

    # -- find --------------------------------------------------------------------------

    def test_find_is_case_insensitive_and_knows_every_address(self, connector: Connector) -> None:
        ann = connector.create("contact", person("contact", "Ann.Lee@Acme.example", "ann@private.example"))
        assert ann.kind == "contact" and ann.name == "Ann Lee"
        for address in ("ann.lee@acme.example", "ANN.LEE@ACME.EXAMPLE", "Ann@Private.Example"):
            assert ids(connector.find(address, ["lead", "contact", "account"])) == [("contact", ann.id)]
        assert connector.find("lee@acme.example", ["contact"]) == []
        assert connector.find("ann.lee@acme.example", ["lead"]) == []

    def test_find_returns_kinds_in_the_order_asked(self, connector: Connector) -> None:
        lead = connector.create("lead", person("lead", "bob@x.example", first="Bob"))
        contact = connector.create("contact", person("contact", "Bob@X.example", first="Bob"))
        assert ids(connector.find("bob@x.example", ["contact", "lead"])) == [("contact", contact.id), ("lead", lead.id)]
        assert ids(connector.find("bob@x.example", ["lead", "contact"])) == [("lead", lead.id), ("contact", contact.id)]

    def test_hostile_addresses_match_exactly(self, connector: Connector) -> None:
        refs = {a: connector.create("contact", person("contact", a)) for a in HOSTILE}
        for address, ref in refs.items():
            assert ids(connector.find(address, ["contact"])) == [("contact", ref.id)], address
            assert ids(connector.find(address.upper(), ["contact"])) == [("contact", ref.id)], address.upper()
        for lookalike in LOOKALIKES:
            assert connector.find(lookalike, ["contact"]) == [], lookalike
        assert connector.find("%@example.org", ["contact"]) == []
        assert connector.find("_%", ["contact"]) == []

    def test_quoted_local_part_matches_the_plain_spelling(self, connector: Connector) -> None:
        """A parser re-quotes `o'neil\\q` (`"o'neil\\\\q"`); a CRM form keeps it plain. One person."""
        plain = connector.create("contact", person("contact", "o'neil\\q@example.org"))
        quoted = connector.create("contact", person("contact", '"ann lee"@example.org'))
        for spelling in ('"o\'neil\\\\q"@example.org', '"O\'NEIL\\\\Q"@Example.ORG', "O'Neil\\q@example.org"):
            assert ids(connector.find(spelling, ["contact"])) == [("contact", plain.id)], spelling
        for spelling in ("ann lee@example.org", '"Ann Lee"@example.org', '"ann\\ lee"@example.org'):
            assert ids(connector.find(spelling, ["contact"])) == [("contact", quoted.id)], spelling
        # still exact: a quoted-pair is its character alone, and wildcards stay characters
        for lookalike in (
            '"o\'neil\\q"@example.org',
            "o'neil%q@example.org",
            '"o\'neil_q"@example.org',
            '"o%"@example.org',
            "ann_lee@example.org",
            '"ann%"@example.org',
        ):
            assert connector.find(lookalike, ["contact"]) == [], lookalike

    def test_find_by_domain(self, connector: Connector) -> None:
        acme = connector.create("account", PartyData(kind="account", name="Acme", domain="acme.example", owner="me@example.com"))
        connector.create("account", PartyData(kind="account", name="Other", domain="other.example"))
        assert acme.name == "Acme"
        assert ids(connector.find_by_domain("ACME.example")) == [("account", acme.id)]
        assert connector.find_by_domain("sub.acme.example") == []
        assert connector.find_by_domain("nobody.example") == []

    # -- create ------------------------------------------------------------------------

    def test_create_keeps_owner_and_addresses(self, connector: Connector, inspect: Inspector) -> None:
        lead = connector.create(
            "lead", person("lead", "carl@c.example", "Carl@Home.example", first="Carl", owner="sales@example.com")
        )
        stored = inspect.party(lead)
        assert stored is not None and stored.owner == "sales@example.com"
        assert {e.casefold() for e in stored.emails} == {"carl@c.example", "carl@home.example"}

    def test_create_contact_linked_to_account(self, connector: Connector) -> None:
        acme = connector.create("account", PartyData(kind="account", name="Acme", domain="acme.example"))
        data = PartyData(kind="contact", emails=("dee@acme.example",), first_name="Dee", last_name="Day", account=acme)
        dee = connector.create("contact", data)
        assert ids(connector.find("dee@acme.example", ["contact"])) == [("contact", dee.id)]

    # -- attach ------------------------------------------------------------------------

    def test_attach_with_attachments_to_one_record(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        files = (
            attachment("quote.pdf", b"%PDF-1.4 quote", "application/pdf"),
            attachment("logo.png", b"\x89PNG logo", "image/png"),
        )
        ref = connector.attach([ann], make_mail(attachments=files))
        assert ref.message_id == "<m1@example.org>"
        [stored] = inspect.emails("<m1@example.org>")
        assert stored.id == ref.id and stored.subject == "Quote"
        assert stored.links == {("contact", ann.id)}
        assert sorted((f.filename, f.size, f.sha256) for f in stored.attachments) == sorted(
            (a.filename, a.size, a.sha256) for a in files
        )

    def test_attach_to_several_records(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        acme = connector.create("account", PartyData(kind="account", name="Acme", domain="acme.example"))
        connector.attach([ann, acme], make_mail())
        [stored] = inspect.emails("<m1@example.org>")
        assert stored.links == {("contact", ann.id), ("account", acme.id)}

    def test_same_mail_twice_is_one_record(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        bob = connector.create("lead", person("lead", "bob@x.example", first="Bob"))
        mail = make_mail(attachments=[attachment("a.txt", b"a")])
        first = connector.attach([ann], mail)
        again = connector.attach([ann], mail)
        third = connector.attach([bob], mail)  # the same mail seen in another mailbox, for Bob
        assert first.id == again.id == third.id
        [stored] = inspect.emails("<m1@example.org>")
        assert stored.links == {("contact", ann.id), ("lead", bob.id)}
        assert len(stored.attachments) == 1
        found = connector.find_email("<m1@example.org>")
        assert found is not None and found.id == first.id

    def test_same_message_id_other_content_is_a_version(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        one = connector.attach([ann], make_mail(body="first wording"))
        two = connector.attach([ann], make_mail(body="second wording"))
        assert one.id != two.id
        stored = inspect.emails("<m1@example.org>")
        assert [s.id for s in stored] == [one.id, two.id]
        assert all(s.links == {("contact", ann.id)} for s in stored)
        v2 = connector.find_email("<m1@example.org>", two.content_hash)
        assert v2 is not None and v2.id == two.id

    def test_find_email_and_thread_parents(self, connector: Connector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        acme = connector.create("account", PartyData(kind="account", name="Acme", domain="acme.example"))
        connector.attach([ann, acme], make_mail("<t1@example.org>"))
        assert connector.find_email("<nothing@example.org>") is None
        assert connector.find_email("<t1@example.org>", "other-hash") is None
        parents = connector.thread_parents(["<unknown@x>", "<t1@example.org>"])
        assert sorted(ids(parents)) == sorted([("contact", ann.id), ("account", acme.id)])
        assert connector.thread_parents([]) == []

    def test_attach_to_hostile_address_record(self, connector: Connector, inspect: Inspector) -> None:
        refs = [connector.create("lead", person("lead", a)) for a in HOSTILE]
        connector.attach(refs, make_mail(sender=HOSTILE[0], cc=HOSTILE[1:]))
        [stored] = inspect.emails("<m1@example.org>")
        assert stored.links == {("lead", r.id) for r in refs}

    # -- notes -------------------------------------------------------------------------

    def test_note_on_one_record(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        ref = connector.add_note([ann], note())
        assert ref.key == "mail-1/step-1" and len(ref.ids) == 1
        [stored] = inspect.notes(ann)
        assert (stored.id, stored.title, stored.text) == (ref.ids[0], "Quote", "Call back about the quote.")

    def test_note_on_several_records(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        acme = connector.create("account", PartyData(kind="account", name="Acme", domain="acme.example"))
        bob = connector.create("lead", person("lead", "bob@x.example", first="Bob"))
        connector.add_note([ann, acme, bob], note())
        for ref in (ann, acme, bob):
            assert [(n.title, n.text) for n in inspect.notes(ref)] == [("Quote", "Call back about the quote.")], ref

    def test_same_key_again_is_one_note_per_record(self, connector: Connector, inspect: Inspector) -> None:
        """The crash replay: the gateway does not know which records got the note, so it asks
        again for all of them; only the missing ones get it."""
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        bob = connector.create("lead", person("lead", "bob@x.example", first="Bob"))
        first = connector.add_note([ann], note())
        again = connector.add_note([ann, bob], note())
        third = connector.add_note([bob, ann], note())
        assert len(inspect.notes(ann)) == 1 and len(inspect.notes(bob)) == 1
        assert inspect.notes(ann)[0].id in first.ids and set(again.ids) == set(third.ids)

    def test_another_key_is_another_note(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        connector.add_note([ann], note("mail-1/step-1"))
        connector.add_note([ann], note("mail-2/step-1"))  # the same words, from another mail
        assert [n.text for n in inspect.notes(ann)] == ["Call back about the quote."] * 2

    def test_note_text_comes_back_as_written(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        connector.add_note([ann], note(text=UNICODE_NOTE, title=""))
        connector.add_note([ann], note("k2", text=UNICODE_NOTE, title="Rückruf — 東京"))
        assert [(n.title, n.text) for n in inspect.notes(ann)] == [("", UNICODE_NOTE), ("Rückruf — 東京", UNICODE_NOTE)]

    def test_forget_takes_the_notes_of_erased_records(self, connector: Connector, inspect: Inspector) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        kept = connector.create("lead", person("lead", "ann@acme.example"))  # one a person made, say
        connector.add_note([ann, kept], note())
        report = connector.forget("ann@acme.example", lambda r: r.kind == "contact")
        assert ids(report.parties) == [("contact", ann.id)]
        assert inspect.notes(ann) == []
        assert [n.text for n in inspect.notes(kept)] == ["Call back about the quote."]

    # -- the CRM misbehaving (connectors that talk over a network) ------------------------

    @pytest.fixture
    def far_side(self) -> FarSide:
        pytest.skip("this connector has no network far side to make misbehave")

    def test_429_is_retried_after_the_delay_asked(self, connector: Connector, far_side: FarSide) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        far_side.fail_next(429, headers={"Retry-After": "1"})
        start = len(far_side.log)
        assert ids(connector.find("ann@acme.example", ["contact"])) == [("contact", ann.id)]
        refused, retried = far_side.log[start], far_side.log[start + 1]
        assert retried.at - refused.at >= 1.0  # the far side's clock: the connector waited as asked

    def test_long_retry_after_is_left_to_the_pipeline(self, connector: Connector, far_side: FarSide) -> None:
        connector.create("contact", person("contact", "ann@acme.example"))
        far_side.fail_next(429, headers={"Retry-After": "120"})
        with pytest.raises(Retryable) as caught:
            connector.find("ann@acme.example", ["contact"])
        assert caught.value.retry_after == 120

    def test_5xx_is_retryable_and_passes(self, connector: Connector, far_side: FarSide) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        far_side.fail_next(503)
        with pytest.raises(Retryable):
            connector.find("ann@acme.example", ["contact"])
        far_side.fail_next(500)
        with pytest.raises(Retryable):
            connector.attach([ann], make_mail())
        assert ids(connector.find("ann@acme.example", ["contact"])) == [("contact", ann.id)]

    @pytest.mark.parametrize("timeout", [STALL_TIMEOUT])
    def test_timeout_is_retryable(self, connector: Connector, far_side: FarSide, timeout: float) -> None:
        ann = eventually(lambda: connector.create("contact", person("contact", "ann@acme.example")))
        far_side.stall_next(STALL_HOLD)  # held until released: the client surely gives up first
        try:
            with pytest.raises(Retryable):
                connector.find("ann@acme.example", ["contact"])
        finally:
            far_side.release_stalls()
        # the same connector recovers (polled: its short timeout may expire again on a busy
        # machine, and a create that timed out may have been made twice: `in`, not `==`)
        assert ("contact", ann.id) in ids(eventually(lambda: connector.find("ann@acme.example", ["contact"])))

    def test_note_refused_is_permanent_with_the_crm_message(
        self, connector: Connector, far_side: FarSide, inspect: Inspector
    ) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        far_side.reject_next_write("the note text is not allowed")
        with pytest.raises(Permanent, match="the note text is not allowed"):
            connector.add_note([ann], note())
        assert inspect.notes(ann) == []

    def test_note_5xx_is_retryable_and_the_retry_adds_it_once(
        self, connector: Connector, far_side: FarSide, inspect: Inspector
    ) -> None:
        ann = connector.create("contact", person("contact", "ann@acme.example"))
        far_side.fail_next(503)
        with pytest.raises(Retryable):
            connector.add_note([ann], note())
        connector.add_note([ann], note())
        assert len(inspect.notes(ann)) == 1

    @pytest.mark.parametrize("timeout", [STALL_TIMEOUT])
    def test_note_timeout_is_retryable(self, connector: Connector, far_side: FarSide, inspect: Inspector, timeout: float) -> None:
        ann = eventually(lambda: connector.create("contact", person("contact", "ann@acme.example")))
        far_side.stall_next(STALL_HOLD)
        try:
            with pytest.raises(Retryable):
                connector.add_note([ann], note())
        finally:
            far_side.release_stalls()
        eventually(lambda: connector.add_note([ann], note()))  # a stalled request was never answered nor carried out
        assert len(inspect.notes(ann)) == 1

    def test_validation_error_is_permanent_with_the_crm_message(self, connector: Connector, far_side: FarSide) -> None:
        connector.find("ann@acme.example", ["contact"])  # logged in, if the CRM has sessions
        far_side.reject_next_write("lastname does not have a value")
        with pytest.raises(Permanent, match="lastname does not have a value"):
            connector.create("contact", person("contact", "ann@acme.example"))
        far_side.fail_next(400, body=b'{"message": "malformed request"}')
        with pytest.raises(Permanent):
            connector.find("ann@acme.example", ["contact"])
