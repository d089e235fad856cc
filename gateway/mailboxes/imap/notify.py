"""IMAP NOTIFY (RFC 5465): all of a mailbox's watched folders on one connection.

After `NOTIFY SET (mailboxes (…) (MessageNew MessageExpunge))` the server announces new mail
in any of those folders as an untagged `STATUS` while the connection idles with no folder
selected. So a mailbox costs one connection however many folders it watches, instead of one
per folder. After a scan the folder is left with UNSELECT (never CLOSE, which would
expunge), since NOTIFY says nothing of the selected folder. Used with `notify: true` where
the server offers NOTIFY and UNSELECT (Dovecot does).
"""

from __future__ import annotations

import imaplib

from imapclient import IMAPClient

from gateway.mailboxes.imap.conn import ServerInfo

imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))  # imaplib knows only the commands of RFC 3501


def can_notify(info: ServerInfo) -> bool:
    return {"NOTIFY", "UNSELECT", "IDLE"} <= info.capabilities


def set_notify(client: IMAPClient, folders: list[str]) -> None:
    """Ask for new-mail and expunge events of these folders (server names)."""
    names = b" ".join(client._normalise_folder(f) for f in folders)
    typ, data = client._imap._simple_command("NOTIFY", b"SET (mailboxes (" + names + b") (MessageNew MessageExpunge))")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"NOTIFY SET refused: {data!r}")


def leave_folder(client: IMAPClient) -> bool:
    """UNSELECT; whether news of other folders (untagged STATUS) came meanwhile."""
    client.unselect_folder()
    return bool(client._imap.untagged_responses.pop("STATUS", None))
