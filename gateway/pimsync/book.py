"""One sync round of one address book: what changed on each side since the cursors, then
deletes, new cards, new records, merges and reassignments, then the cursors.

Order matters for "once": the card side is read first (new cards become records, deleted cards
unlink or delete their records), then the CRM feed (records of this user become cards, records
of another user or deleted leave this book). The cursors move only at the end, so a crash
repeats the round's reads; the journal and the idempotent writes make the repeat harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.crm.sync import Change, ContactSync, GoneCheck, SyncContact
from gateway.errors import Permanent
from gateway.ledger.pim import Link, LinkState, PimLedger
from gateway.mailboxes.carddav.client import CardDavClient
from gateway.mailboxes.carddav.config import AddressBookConfig
from gateway.pimsync.replay import replay
from gateway.pimsync.steps import KIND, BookSteps, Checkpoint, Tally, no_checkpoint

Progress = Callable[[int, int], None]
FEED_PAGE = 1000
MASS_REMOVAL = 10  # links a round may remove whatever the share


@dataclass(frozen=True)
class BookReport:
    book: str
    cards_created: int
    cards_updated: int
    cards_deleted: int
    records_created: int
    records_updated: int
    records_deleted: int
    unlinked: int
    conflicts: int
    skipped: int
    notes: tuple[str, ...]

    @classmethod
    def of(cls, book: str, t: Tally) -> BookReport:
        return cls(
            book,
            t.cards_created,
            t.cards_updated,
            t.cards_deleted,
            t.records_created,
            t.records_updated,
            t.records_deleted,
            t.unlinked,
            t.conflicts,
            t.skipped,
            tuple(t.notes),
        )


def _feed(crm: ContactSync, version: int) -> tuple[dict[str, Change], int]:
    """Every contact change after `version`, the last per record."""
    out: dict[str, Change] = {}
    while True:
        changes, new = crm.changes_since(version, FEED_PAGE)
        for ch in changes:
            if ch.kind == KIND:
                out[ch.id] = ch
        if new == version:
            return out, version
        version = new


def _gone(crm: ContactSync, version: int, linked: list[str]) -> dict[str, Change]:
    """Deletes a CRM without tombstones cannot feed: the linked records that no longer exist."""
    if not isinstance(crm, GoneCheck) or not linked:
        return {}
    now = time.time()
    return {cid: Change(KIND, cid, version, True, "", now) for cid in crm.missing(KIND, linked)}


def sync_book(
    book: AddressBookConfig,
    crm: ContactSync,
    pim: PimLedger,
    client: CardDavClient,
    *,
    delete_records: bool = False,
    allow_mass_removal: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
    progress: Progress | None = None,
) -> BookReport:
    steps = BookSteps(book, crm, pim, client, checkpoint)
    replay(steps)
    version, token = pim.cursor(book.name)
    feed, new_version = _feed(crm, version)
    listing = client.changes(token)
    links = {link.href: link for link in pim.links(book.name)}
    by_record = {link.crm_id: link for link in links.values() if link.kind == KIND}
    feed.update(_gone(crm, new_version, [cid for cid in by_record if cid not in feed]))

    gone = [h for h in links if h not in listing.changed] if listing.full else [h for h in listing.deleted if h in links]
    _guard(book, links, gone, allow_mass_removal)
    fresh = {h for h, etag in listing.changed.items() if h not in links or not etag or links[h].etag != etag}
    # records changed in the CRM whose card did not change: read them only if they differ
    # from the snapshot (the echo of the sync's own writes does not)
    # the feed is every user's: a record read only when it was this user's at its change or
    # is in this book (a reassignment away); the others are another book's business
    feed = {cid: ch for cid, ch in feed.items() if ch.owner == book.crm_user or cid in by_record}
    records: dict[str, SyncContact | None] = {cid: crm.get_contact(cid) for cid, ch in feed.items() if not ch.deleted}
    for cid, rec in records.items():
        link = by_record.get(cid)
        linked = link is not None and link.state is LinkState.LINKED
        if link is not None and linked and rec and rec.owner == book.crm_user and rec.fields.as_dict() != link.snapshot:
            fresh.add(link.href)
    cards = client.get_many(sorted(fresh))
    total, done = len(gone) + len(cards) + len(feed), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    for href in gone:
        now = steps.card_gone(links[href], delete_records)
        if now is None:
            by_record.pop(links[href].crm_id, None)
        else:
            by_record[now.crm_id] = now
        tick()
    handled: set[str] = set()
    for href, card in cards.items():
        link = links.get(href)
        try:
            if link is None:
                steps.create_record(card)
            elif (rec := records.get(link.crm_id)) is not None and not link.same_record(rec.born):
                pass  # the id now names another record: the CRM pass below replaces the card
            elif rec is None or rec.owner == book.crm_user:
                steps.reconcile(link, card, feed.get(link.crm_id))
                handled.add(link.crm_id)
            # else: moving away; the CRM pass below removes the card
        except Permanent as exc:  # this card only: the others still sync, and it is said why
            steps.tally.skipped += 1
            steps.tally.notes.append(f"{href}: skipped: {exc}")
        tick()
    for cid, change in feed.items():
        try:
            _record_changed(steps, book, by_record.get(cid), change, records.get(cid), handled)
        except Permanent as exc:  # the server refused this card: the others still sync
            steps.tally.skipped += 1
            steps.tally.notes.append(f"contact:{cid}: skipped: {exc}")
        tick()
    checkpoint("cursor:before")
    pim.save_cursor(book.name, new_version, listing.token)
    return BookReport.of(book.name, steps.tally)


def _guard(book: AddressBookConfig, links: dict[str, Link], gone: list[str], allowed: bool) -> None:
    """Stop before removing more than half of a book's links (and more than 10): a listing
    gone wrong (a server answering half a book) would look just like that."""
    linked = [h for h in links if links[h].state is LinkState.LINKED]
    removing = [h for h in gone if links[h].state is LinkState.LINKED]
    if not allowed and len(removing) > MASS_REMOVAL and len(removing) * 2 > len(linked):
        raise Permanent(
            f"{len(removing)} of the {len(linked)} cards of address book {book.name} look deleted: "
            "nothing done; if that is so, set pimsync.allow_mass_removal: true for one round"
        )


def _record_changed(
    steps: BookSteps,
    book: AddressBookConfig,
    link: Link | None,
    change: Change,
    rec: SyncContact | None,
    handled: set[str],
) -> None:
    if change.deleted or rec is None:
        if link is not None and link.state is LinkState.LINKED:
            steps.remove_card(link)  # deleted in the CRM
        elif link is not None:
            steps.pim.drop_link(book.name, link.href)
        return
    if link is not None and not link.same_record(rec.born):
        # the linked record was deleted and its id given to a new one: the old card goes (or
        # the old link), and the new record is a new card, never the old person's
        if link.state is LinkState.LINKED:
            steps.remove_card(link)
        else:
            steps.pim.drop_link(book.name, link.href)
        link = None
    if rec.owner != book.crm_user:
        if link is not None and link.state is LinkState.LINKED:
            steps.remove_card(link)  # assigned to someone else
        elif link is not None:
            steps.pim.drop_link(book.name, link.href)
        return
    if link is None:
        steps.create_card(rec)
    elif link.state is LinkState.LINKED and change.id not in handled and rec.fields.as_dict() != link.snapshot:
        steps.reconcile(link, None, change)
