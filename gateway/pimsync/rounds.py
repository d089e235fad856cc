"""The contact sync run from the config: `PimSync` opens the CRM and the ledger once and runs
rounds over the configured address books (`crm-gateway pimsync`), and tells when the CRM's
feed moved (the watch loop, gateway/pimsync/watch.py); `conflicts` lists what both sides
changed (`pimsync conflicts`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from types import TracebackType

from gateway.config import Config
from gateway.crm.base import make_connector
from gateway.crm.sync import contact_sync
from gateway.errors import ConfigError, GatewayError
from gateway.ledger.pim import Conflict
from gateway.ledger.store import Ledger
from gateway.mailboxes.carddav.client import CardDavClient
from gateway.mailboxes.carddav.config import AddressBookConfig
from gateway.pimsync.book import BookReport, sync_book
from gateway.pimsync.choices import apply_choices
from gateway.pimsync.steps import Checkpoint, no_checkpoint

log = logging.getLogger(__name__)
BookProgress = Callable[[str, int, int], None]
Results = tuple[list[BookReport], dict[str, GatewayError]]


class PimSync:
    """`with PimSync(cfg) as sync: sync.round()`: the CRM and the ledger stay open between rounds."""

    def __init__(self, cfg: Config, books: list[str] | None = None) -> None:
        self.cfg = cfg
        self.books = _chosen(cfg, books)
        self.crm = make_connector(cfg.crm.model_copy(update={"url": cfg.db_url(cfg.crm.url)}))
        try:
            self.contacts = contact_sync(self.crm)
            self.ledger = Ledger(cfg.db_url(cfg.ledger.url))
        except BaseException:
            self.crm.close()
            raise
        self.pim = self.ledger.pim()

    def __enter__(self) -> PimSync:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.ledger.close()
        self.crm.close()

    def round(
        self,
        *,
        progress: BookProgress | None = None,
        checkpoint: Checkpoint = no_checkpoint,
        only: Collection[str] | None = None,
    ) -> Results:
        """One round per address book (or per one of `only`); a book that fails does not stop
        the others: its error is returned beside the reports of the rest."""
        reports: list[BookReport] = []
        failed: dict[str, GatewayError] = {}
        for book in self.books:
            if only is not None and book.name not in only:
                continue
            on_progress = (lambda done, total, n=book.name: progress(n, done, total)) if progress else None
            try:
                apply_choices(book, self.contacts, self.pim)  # a person's choices on conflicts first
                with CardDavClient(book) as client:
                    delete = self.cfg.pimsync.on_card_deleted == "delete"
                    reports.append(
                        sync_book(
                            book,
                            self.contacts,
                            self.pim,
                            client,
                            delete_records=delete,
                            allow_mass_removal=self.cfg.pimsync.allow_mass_removal,
                            checkpoint=checkpoint,
                            progress=on_progress,
                        )
                    )
            except GatewayError as exc:
                failed[book.name] = exc
            except Exception as exc:  # a defect met in one book's data must not stop the others
                log.exception("pimsync: %s: unexpected error", book.name)
                failed[book.name] = GatewayError(f"unexpected {exc.__class__.__name__}: {exc}")
        return reports, failed

    def crm_moved(self, books: list[str] | None = None) -> bool:
        """Whether the CRM's feed has a change one of these books (default all) has not synced
        yet (one small query)."""
        names = [b.name for b in self.books] if books is None else books
        oldest = min((self.pim.cursor(n)[0] for n in names), default=0)
        # the version, not the list: a feed may repeat the changes at its cursor (Tryton's does)
        _, version = self.contacts.changes_since(oldest, limit=1)
        return version != oldest


def _chosen(cfg: Config, books: list[str] | None) -> list[AddressBookConfig]:
    chosen = cfg.addressbooks()
    if books:
        unknown = [n for n in books if cfg.pimsync.book(n) is None]
        if unknown:
            known = ", ".join(b.name for b in chosen) or "none"
            raise ConfigError(f"pimsync: no address book named {', '.join(unknown)} (configured: {known})")
        chosen = [b for b in chosen if b.name in books]
    return chosen


def sync_all(
    cfg: Config,
    books: list[str] | None = None,
    *,
    progress: BookProgress | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> Results:
    """One round for every configured address book (or those named)."""
    with PimSync(cfg, books) as sync:
        return sync.round(progress=progress, checkpoint=checkpoint)


def conflicts(cfg: Config, book: str | None = None) -> list[Conflict]:
    ledger = Ledger(cfg.db_url(cfg.ledger.url))
    try:
        return ledger.pim().conflicts(book)
    finally:
        ledger.close()
