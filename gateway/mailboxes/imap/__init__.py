"""IMAP mailboxes: one connection per watched folder (IDLE or polling), tags written back as
keywords (Gmail: labels), `move` by MOVE or UIDPLUS; `check` logs in and asks what the server can do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.mailboxes.base import Source, SourceEnv, Writeback
    from gateway.mailboxes.imap.config import ImapConfig


def make(config: ImapConfig, env: SourceEnv) -> tuple[Source, Writeback]:
    """One mailbox (source.py), or with `mailboxes` the many an entry reaches through its master
    user (fleet.py, which builds one source per mailbox). Here, not in source.py, so that the
    fleet imports the source and nothing imports back; imapclient loads only when called."""
    if config.many:
        from gateway.mailboxes.imap.fleet import ImapFleet

        fleet = ImapFleet(config, env)
        return fleet, fleet.writeback
    from gateway.mailboxes.imap.source import ImapSource
    from gateway.mailboxes.imap.writeback import ImapWriteback

    source = ImapSource(config, env)
    return source, ImapWriteback(source)
