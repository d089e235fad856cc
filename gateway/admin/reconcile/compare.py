"""One folder against the ledger and the CRM: the findings of `reconcile`, without changing
anything. The listing, the ledger and the CRM are each read in bulk (a query per folder or
per chunk of Message-IDs), never once per message."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime

from gateway.admin.reconcile.report import Finding, FindingKind
from gateway.crm.base import Connector, EmailLookup, EmailRef
from gateway.ledger.inventory import KnownCopy
from gateway.ledger.states import TERMINAL, LocationState, MessageState
from gateway.mailboxes.base import FolderListing

_DONE = (MessageState.DONE, MessageState.DONE_UNTAGGED)
NO_DUPLICATES = "duplicates in the CRM not checked: the CRM connector cannot list emails by Message-ID"


def mailbox_findings(
    listing: FolderListing, known: Sequence[KnownCopy], marks_for: Callable[[Set[str]], frozenset[str]]
) -> list[Finding]:
    """Kinds 1 and 4: copies in the folder the ledger does not know, and copies that lack tags."""
    by_key = {(k.location.ref.uidvalidity, k.location.ref.item_key): k for k in known}
    out = []
    for held in listing.items:
        k = by_key.get((held.ref.uidvalidity, held.ref.item_key))
        if k is None:
            out.append(Finding(FindingKind.UNKNOWN, held.ref, held.message_id))
            continue
        loc = k.location
        if held.marks is None or loc.state != LocationState.APPLIED or not loc.tags:
            continue
        missing = marks_for(set(loc.tags)) - held.marks
        if missing:
            out.append(
                Finding(
                    FindingKind.UNTAGGED,
                    held.ref,
                    k.message_id or held.message_id,
                    loc.message_pk,
                    loc.id,
                    "lacks " + ", ".join(sorted(missing)),
                    loc.tags,
                )
            )
    return out


def not_done(known: Sequence[KnownCopy], since: datetime | None) -> list[Finding]:
    """Kind 2: copies whose message is not in a final state (or was never read)."""
    out = []
    for k in known:
        if k.state is not None and k.state in TERMINAL:
            continue
        if since is not None and k.location.seen_at < since:
            continue
        state = k.state.value if k.state is not None else "recorded, not read yet"
        out.append(Finding(FindingKind.NOT_DONE, k.location.ref, k.message_id, k.location.message_pk, k.location.id, state))
    return out


def crm_findings(
    known: Sequence[KnownCopy],
    attached: Set[int],
    identities: Mapping[str, Set[str]],
    crm: Connector,
    since: datetime | None,
) -> tuple[list[Finding], str]:
    """Kinds 3 and 5 for the messages whose primary copy is in this folder, done, and stored in
    the CRM by the journal's word; and a note when duplicates could not be checked."""
    done = [
        k
        for k in known
        if k.primary
        and k.state in _DONE
        and k.location.message_pk in attached
        and (since is None or (k.created_at is not None and k.created_at >= since))
    ]
    if not done:
        return [], ""
    stored: Mapping[str, Sequence[EmailRef]]
    note = ""
    if isinstance(crm, EmailLookup):
        stored = crm.emails_for([k.message_id for k in done])
    else:
        found = {k.message_id: crm.find_email(k.message_id, k.content_hash) for k in done}
        stored = {mid: [ref] for mid, ref in found.items() if ref is not None}
        note = NO_DUPLICATES
    out = []
    counted: set[str] = set()  # a Message-ID stored twice is one finding, whatever its mails
    for k in done:
        refs = stored.get(k.message_id, ())
        loc = k.location
        if not any(r.content_hash in ("", k.content_hash) for r in refs):
            out.append(Finding(FindingKind.MISSING_IN_CRM, loc.ref, k.message_id, loc.message_pk, loc.id, "no email in the CRM"))
        elif not note and k.message_id not in counted and len(refs) > len(identities.get(k.message_id, ())):
            counted.add(k.message_id)
            ids = ", ".join(r.id for r in refs)
            out.append(
                Finding(
                    FindingKind.DUPLICATE_IN_CRM,
                    loc.ref,
                    k.message_id,
                    loc.message_pk,
                    loc.id,
                    f"{len(refs)} CRM emails ({ids}) for {len(identities.get(k.message_id, ()))} mail(s) in the ledger",
                )
            )
    return out, note
