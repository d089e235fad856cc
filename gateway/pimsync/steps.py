"""The writes of a contact sync round, each journalled so a crash at any point and the next
round leave one card per record and one record per card:

- a card from a CRM record: intent, PUT with `If-None-Match: *` on an href derived from the
  record's id (a replay finds the href taken and adopts the card), link, done;
- a record from a card: intent, `create_contact` under a key derived from the card's UID (a
  replay gets the record made the first time), link, done;
- an update of a linked pair: the three-way merge (gateway/pimsync/merge.py), then the CRM,
  then the card (`If-Match`), then the snapshot; a crash in between leaves the old snapshot,
  against which the next round finds the same merge already half done and finishes it.

`checkpoint(name)` is called between the steps: tests raise there to stand for a crash.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.crm.sync import Change, ContactFields, ContactSync, SyncContact
from gateway.errors import Permanent
from gateway.ledger.pim import Link, LinkState, PimLedger
from gateway.mailboxes.carddav.client import Card, CardDavClient
from gateway.mailboxes.carddav.config import AddressBookConfig
from gateway.pimsync import vcard
from gateway.pimsync.merge import merge

Checkpoint = Callable[[str], None]
KIND = "contact"


def no_checkpoint(_step: str) -> None:
    pass


@dataclass
class Tally:
    """What one round did to one address book (counted as it goes)."""

    cards_created: int = 0
    cards_updated: int = 0
    cards_deleted: int = 0
    records_created: int = 0
    records_updated: int = 0
    records_deleted: int = 0
    unlinked: int = 0
    conflicts: int = 0
    skipped: int = 0  # cards or records a side refused (a card that is no vCard): the round goes on
    notes: list[str] = field(default_factory=list)  # why each skipped one was skipped


class BookSteps:
    def __init__(
        self,
        book: AddressBookConfig,
        crm: ContactSync,
        pim: PimLedger,
        client: CardDavClient,
        checkpoint: Checkpoint = no_checkpoint,
    ) -> None:
        self.book, self.crm, self.pim, self.client, self.checkpoint = book, crm, pim, client, checkpoint
        self.tally = Tally()

    # -- names -------------------------------------------------------------------------

    def card_href(self, crm_id: str) -> str:
        """The card of a record has a fixed name: a repeated create lands on the same href."""
        return self.client.href_for(f"crm-{KIND}-{crm_id}.vcf")

    def card_uid(self, crm_id: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"crm-gateway:{self.book.name}:{KIND}:{crm_id}"))

    def record_key(self, card: Card, uid: str) -> str:
        """The CRM's idempotency key for a record made from this card."""
        raw = f"carddav:{self.book.name}:{uid or card.href}"
        return raw if len(raw) <= 255 else "carddav:" + hashlib.sha256(raw.encode()).hexdigest()

    # -- CRM → card --------------------------------------------------------------------

    def create_card(self, rec: SyncContact) -> None:
        href, uid = self.card_href(rec.id), self.card_uid(rec.id)
        self.pim.intend(self.book.name, "put_card", rec.id)
        self.checkpoint("put_card:intent")
        text = vcard.render(rec.fields, uid, f"{KIND}:{rec.id}", self.book.vcard_version)
        etag = self.client.put(href, text)
        if etag is None:  # taken: an earlier round wrote it and did not get to link it
            card = self.client.get(href)
            if card is not None:
                parsed = vcard.parse(card.text)
                link = Link(
                    self.book.name,
                    href,
                    KIND,
                    rec.id,
                    parsed.uid,
                    etag=card.etag,
                    snapshot=parsed.fields.as_dict(),
                    born=rec.born,
                )
                self.pim.save_link(link)
                self.reconcile(link, card, None)
            self.pim.done(self.book.name, "put_card", rec.id)
            return
        self.checkpoint("put_card:written")
        self.pim.save_link(Link(self.book.name, href, KIND, rec.id, uid, etag=etag, snapshot=rec.fields.as_dict(), born=rec.born))
        self.pim.done(self.book.name, "put_card", rec.id)
        self.tally.cards_created += 1

    def remove_card(self, link: Link) -> None:
        """The record left this address book (deleted, or assigned to someone else). Journalled:
        a crash after the DELETE must not read as "the user deleted the card" next round."""
        self.pim.intend(self.book.name, "delete_card", link.href)
        self.checkpoint("delete_card:intent")
        self.client.delete(link.href)
        self.checkpoint("delete_card:done")
        self.pim.drop_link(self.book.name, link.href)
        self.pim.done(self.book.name, "delete_card", link.href)
        self.tally.cards_deleted += 1

    # -- card → CRM --------------------------------------------------------------------

    def create_record(self, card: Card) -> None:
        parsed = vcard.parse(card.text)
        self.pim.intend(self.book.name, "create_crm", card.href)
        self.checkpoint("create_crm:intent")
        rec = self.crm.create_contact(parsed.fields, self.book.crm_user, self.record_key(card, parsed.uid))
        self.checkpoint("create_crm:created")
        other = self.pim.by_record(self.book.name, KIND, rec.id)
        if other is not None and other.href != card.href and other.state is LinkState.LINKED:
            # two cards with one UID: linked both, they would take the record from each other
            # every round; the first keeps it (an unlinked one, its card deleted, gives way)
            self.pim.done(self.book.name, "create_crm", card.href)
            raise Permanent(f"has the UID of {other.href} ({parsed.uid}): one record per UID, this card is left alone")
        seen = time.time()
        link = Link(
            self.book.name,
            card.href,
            KIND,
            rec.id,
            parsed.uid,
            etag=card.etag,
            snapshot=parsed.fields.as_dict(),
            born=rec.born,
            seen_etag=card.etag,
            seen_at=seen,
        )
        self.pim.save_link(link)
        self.pim.done(self.book.name, "create_crm", card.href)
        self.tally.records_created += 1
        if rec.fields != parsed.fields:  # the CRM keeps less (a manager it cannot link): say so on the card
            self.reconcile(link, card, None)

    def card_gone(self, link: Link, delete_record: bool) -> Link | None:
        """The card was deleted in the mailbox; the link as it is now (None: dropped)."""
        if link.state is LinkState.UNLINKED:
            return link
        if delete_record:
            self.crm.delete_contact(link.crm_id)
            self.checkpoint("delete_record:done")
            self.pim.drop_link(self.book.name, link.href)
            self.tally.records_deleted += 1
            return None
        # kept in the CRM; the link stays, unlinked, so the record is not sent back
        unlinked = replace(link, state=LinkState.UNLINKED, etag="")
        self.pim.save_link(unlinked)
        self.tally.unlinked += 1
        return unlinked

    # -- both --------------------------------------------------------------------------

    def reconcile(self, link: Link, card: Card | None, change: Change | None) -> None:
        """Merge a linked pair; `card` None: the card is as the snapshot says."""
        rec = self.crm.get_contact(link.crm_id)
        if rec is None or not link.same_record(rec.born):
            return  # deleted meanwhile (or its id given to another record): the feed says so
        seen = time.time()
        if card is not None:
            parsed = vcard.parse(card.text)
            # a REV is the card's word: never later than when the sync first saw this version
            # (a clock ahead would win every conflict forever), and that time when it has none;
            # kept before the merge, so a round that fails after seeing it does not make it newer
            if card.etag and card.etag == link.seen_etag and link.seen_at:
                seen = link.seen_at
            else:
                link = replace(link, seen_etag=card.etag, seen_at=seen)
                self.pim.save_link(link)
            card_fields, card_at = parsed.fields, min(parsed.changed_at or seen, seen)
        else:
            card_fields, card_at = ContactFields.from_dict(link.snapshot), 0.0
        crm_at = change.changed_at if change is not None else 0.0
        merged = merge(link.snapshot or None, rec.fields, card_fields, crm_at, card_at)
        for c in merged.conflicts:
            self.pim.add_conflict(link, c.field, c.crm_value, c.card_value, c.winner.value)
            self.tally.conflicts += 1
        final = rec.fields
        if merged.fields != rec.fields:
            self.checkpoint("update_crm:before")
            final = self.crm.update_contact(rec.id, merged.fields).fields
            self.checkpoint("update_crm:written")
            self.tally.records_updated += 1
        etag = card.etag if card is not None else link.etag
        if final != card_fields:
            if card is None:
                card = self.client.get(link.href)
                if card is None:
                    return  # gone meanwhile: the next listing says so
                if link.etag and card.etag != link.etag:  # edited since the listing: merge that too
                    return self.reconcile(link, card, change)
                etag = card.etag
            self.checkpoint("update_card:before")
            text = vcard.render(final, link.uid or self.card_uid(rec.id), f"{KIND}:{rec.id}", self.book.vcard_version, card.text)
            etag = self.client.put(link.href, text, etag=card.etag) or ""
            self.checkpoint("update_card:written")
            self.tally.cards_updated += 1
            link = replace(link, seen_etag=etag, seen_at=time.time())
        self.pim.save_link(replace(link, state=LinkState.LINKED, etag=etag, snapshot=final.as_dict(), born=rec.born))
