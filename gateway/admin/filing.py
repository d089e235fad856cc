"""A mail the gateway never handled, filed by a person from their own mailbox: found there by
its Message-ID (`POST /api/v1/link`, `link MESSAGE-ID`, the Outlook add-in on a mail still in
the inbox), then handed over through the one flow.

The search asks each source that can (gateway.mailboxes.base.MessageFinder), one mailbox at a
time, only the mailboxes the person owns (an admin: every one). What is found is recorded at
its place as `process FILE.eml` and `reconcile --fix` record a copy, then filed on the
person's record by the review's decision path without the rules (gateway.pipeline.decisions
`file_found`): done in the ledger, the attach journalled, tagged in the mailbox as synced mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Protocol

from gateway.admin.scope import Visibility
from gateway.crm.base import PartyRef
from gateway.errors import GatewayError, NotFound
from gateway.ledger.refs import SourceRef
from gateway.mailboxes.base import Found, MessageFinder, Source, checked_message_id


class Recorder(Protocol):
    def record(self, ref: SourceRef, raw: bytes, declared_size: int | None = None) -> int: ...


class Filer(Protocol):
    def file_found(self, location_pk: int, ref: PartyRef) -> tuple[int, str]: ...


class Mailboxes(Protocol):
    """What filing uses of the gateway (gateway.runtime.gateway.Gateway)."""

    @property
    def sources(self) -> Sequence[Source]: ...
    @property
    def intake(self) -> Recorder: ...
    @property
    def pipeline(self) -> Filer: ...


# Mailboxes one look-up or link searches at most: each is a login or a request to a server, and
# an admin of a thousand-mailbox entry must not make the add-in wait for a thousand of them.
# The mailbox the asker names (the add-in: the signed-in Outlook user's) is searched first.
SEARCH_MAX = 25


def nowhere(message_id: str, scope: Visibility | None, left: int = 0) -> NotFound:
    """The same words for a mail never seen and one only in another's mailbox: which mailbox
    holds a mail is not the asker's to learn. `left`: mailboxes not searched (SEARCH_MAX)."""
    more = f" (searched {SEARCH_MAX} mailboxes and left {left}: name the one with `mailbox`)" if left else ""
    if scope is None:
        return NotFound(
            f"no message with Message-ID {message_id}: the gateway has not handled it, and no mailbox of its sources holds it{more}"
        )
    return NotFound(f"no message with Message-ID {message_id} in the mailboxes you own, handled or not{more}")


def find(
    gw: Mailboxes, message_id: str, scope: Visibility | None, mailbox: str | None = None, *, only_named: bool = False
) -> Found:
    """The first copy of the mail in a mailbox the person owns, `mailbox` (an address or an
    account) first; NotFound in words when none holds it. A mailbox that cannot be reached is
    passed over; when no other has the mail, its failure is raised (the mail may well be
    there), not a 404."""
    message_id = checked_message_id(message_id)
    failed: GatewayError | None = None
    candidates: list[tuple[MessageFinder, str]] = []
    for src in gw.sources:
        if not isinstance(src, MessageFinder):
            continue
        try:
            accounts = src.reachable()
        except GatewayError as exc:  # its roster cannot be read: said only to whom the source is theirs
            if scope is None or src.name in scope.sources:
                failed = failed or exc
            continue
        candidates += [(src, a) for a in accounts if scope is None or scope.sees(src.name, a)]
    if mailbox:
        named = [c for c in candidates if _named(c[0], c[1], mailbox.strip().lower())]
        # a look-up (the pane, on every mail a person opens) searches the named mailbox only
        candidates = named if only_named else named + [c for c in candidates if c not in named]
    for finder, account in candidates[:SEARCH_MAX]:
        try:
            found = finder.find_message(account, message_id)
        except GatewayError as exc:
            failed = failed or exc
            continue
        if found is not None:
            return found
    if failed is not None:
        raise failed
    raise nowhere(message_id, scope, max(0, len(candidates) - SEARCH_MAX))


def _named(src: object, account: str, name: str) -> bool:
    """Whether `name` names this mailbox: its account, or an owner of its source's entry."""
    owners = getattr(getattr(src, "config", None), "owners", None) or []
    return account.lower() == name or name in {str(o).lower() for o in owners}


def where(ref: SourceRef) -> str:
    """The folder a copy lies in, as a person names it: `source:account/folder`."""
    return f"{ref.source}:{ref.account}/{ref.folder}"


def raw_of(found: Found) -> bytes:
    return found.raw.read_bytes() if isinstance(found.raw, Path) else found.raw


def file_from_mailbox(
    gw: Mailboxes, message_id: str, ref: PartyRef, scope: Visibility | None, mailbox: str | None = None
) -> dict[str, Any]:
    """Find the mail, record it, file it on `ref`; `link`'s answer. NotFound in words when no
    mailbox of the person holds it."""
    found = find(gw, message_id, scope, mailbox)
    location_pk = gw.intake.record(found.ref, raw_of(found), found.declared_size)
    message_pk, email_id = gw.pipeline.file_found(location_pk, ref)
    return {"message": message_pk, "record": ref.label(), "email_id": email_id, "fetched_from": where(found.ref)}


def unfiled_doc(gw: Mailboxes, message_id: str, scope: Visibility | None, mailbox: str | None = None) -> dict[str, Any]:
    """`lookup`'s answer for a mail only a mailbox of the person holds: not in the CRM yet,
    and where it lies, so it can be filed (`POST /api/v1/link` with its Message-ID). With
    `mailbox` (the pane sends its Outlook user's) only that mailbox is searched: the pane looks
    up every mail opened, and must not cost a search of every mailbox each time."""
    found = find(gw, message_id, scope, mailbox, only_named=bool(mailbox))
    head = raw_of(found).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = BytesHeaderParser(policy=default_policy).parsebytes(head)
    return {
        "id": None,
        "message_id": message_id,
        "known": False,
        "state": None,
        "subject": str(headers.get("Subject", "") or ""),
        "from": str(headers.get("From", "") or ""),
        "mailbox": where(found.ref),
        "crm_records": [],
        "can_link": True,
    }
