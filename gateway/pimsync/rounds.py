"""A sync round for every configured address book (`crm-gateway pimsync`), with the CRM and
the ledger opened from the config; and the listed conflicts (`pimsync conflicts`)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import Config
from gateway.crm.base import make_connector
from gateway.crm.sync import contact_sync
from gateway.errors import ConfigError, GatewayError
from gateway.ledger.pim import Conflict
from gateway.ledger.store import Ledger
from gateway.mailboxes.carddav.client import CardDavClient
from gateway.pimsync.book import BookReport, sync_book
from gateway.pimsync.steps import Checkpoint, no_checkpoint

BookProgress = Callable[[str, int, int], None]


def sync_all(
    cfg: Config,
    books: list[str] | None = None,
    *,
    progress: BookProgress | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> tuple[list[BookReport], dict[str, GatewayError]]:
    """One round per address book; a book that fails does not stop the others: its error is
    returned beside the reports of the rest."""
    chosen = cfg.pimsync.addressbooks
    if books:
        unknown = [n for n in books if cfg.pimsync.book(n) is None]
        if unknown:
            known = ", ".join(b.name for b in chosen) or "none"
            raise ConfigError(f"pimsync: no address book named {', '.join(unknown)} (configured: {known})")
        chosen = [b for b in chosen if b.name in books]
    reports: list[BookReport] = []
    failed: dict[str, GatewayError] = {}
    crm = make_connector(cfg.crm.model_copy(update={"url": cfg.db_url(cfg.crm.url)}))
    ledger = Ledger(cfg.db_url(cfg.ledger.url))
    try:
        contacts, pim = contact_sync(crm), ledger.pim()
        for book in chosen:
            on_progress = (lambda done, total, n=book.name: progress(n, done, total)) if progress else None
            try:
                with CardDavClient(book) as client:
                    reports.append(
                        sync_book(
                            book,
                            contacts,
                            pim,
                            client,
                            delete_records=cfg.pimsync.on_card_deleted == "delete",
                            checkpoint=checkpoint,
                            progress=on_progress,
                        )
                    )
            except GatewayError as exc:
                failed[book.name] = exc
    finally:
        ledger.close()
        crm.close()
    return reports, failed


def conflicts(cfg: Config, book: str | None = None) -> list[Conflict]:
    ledger = Ledger(cfg.db_url(cfg.ledger.url))
    try:
        return ledger.pim().conflicts(book)
    finally:
        ledger.close()
