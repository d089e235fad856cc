"""One mail of an IMAP mailbox by its Message-ID (gateway.mailboxes.base.MessageFinder): a mail
a person files by hand that the gateway never handled, most often still in the inbox.

One connection of its own (the watching ones stay in IDLE), EXAMINE (read-only: nothing is
marked \\Seen, nothing expunged) of INBOX, then the watched folders, then the special-use
\\Sent folder, and in each a `UID SEARCH HEADER Message-ID`: the server finds it, we never list
a folder. A server's header search matches a substring, so the header fetched is compared
exactly before the mail is. A mail bigger than `max_message_size` comes as its headers with
its size, as the watching source hands such a mail over.
"""

from __future__ import annotations

from typing import cast

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.errors import ConfigError, Retryable
from gateway.mailboxes.base import Found, checked_message_id, same_message_id
from gateway.mailboxes.imap.account import ImapAccount
from gateway.mailboxes.imap.conn import NETWORK_ERRORS, ImapAuthError, connect, logout_quietly, resolve_folder, server_folders
from gateway.mailboxes.imap.listing import message_id_of

SENT = "\\Sent"  # the special-use attribute (RFC 6154): the sent folder, whatever its language


def folders_to_search(watched: list[str]) -> list[str]:
    """The inbox first (where an unfiled mail most likely is), the watched folders, sent mail."""
    return list(dict.fromkeys(["INBOX", *watched, SENT]))


def find(src: ImapAccount, message_id: str) -> Found | None:
    """The first copy of the mail with this Message-ID in the folders above; None if none has it."""
    message_id = checked_message_id(message_id)  # goes into a SEARCH command: no CR or LF
    try:
        client, _info = connect(src.config)
    except (ImapAuthError, ConfigError):
        raise
    except (*NETWORK_ERRORS, IMAPClientError, Retryable) as exc:
        raise Retryable(f"imap {src.name}: cannot reach {src.config.host}: {exc}") from exc
    try:
        on_server = server_folders(client)
        for name in folders_to_search(list(src.config.folders)):
            server = resolve_folder(name, on_server)
            if server is None or server not in on_server:
                continue
            found = _in_folder(src, client, name, server, message_id)
            if found is not None:
                return found
        return None
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        raise Retryable(f"imap {src.name}: cannot search {src.account} for {message_id}: {exc}") from exc
    finally:
        logout_quietly(client)


def _in_folder(src: ImapAccount, client: IMAPClient, name: str, server: str, message_id: str) -> Found | None:
    info = client.select_folder(server, readonly=True)
    if not info.get(b"EXISTS"):
        return None
    uv = int(info[b"UIDVALIDITY"])
    uids = sorted(client.search(["HEADER", "Message-ID", message_id.strip()]))
    if not uids:
        return None
    heads = client.fetch(uids, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    for uid in sorted(heads):
        header = heads[uid].get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b"")
        if not same_message_id(message_id_of(header), message_id):
            continue
        size = int(heads[uid].get(b"RFC822.SIZE", 0))
        big = size > src.max_size
        got = client.fetch([uid], ["BODY.PEEK[HEADER]" if big else "BODY.PEEK[]"]).get(uid, {})
        raw = got.get(b"BODY[HEADER]" if big else b"BODY[]")
        if raw is None:  # expunged between the search and the fetch
            continue
        return Found(src.ref(name, uv, uid), bytes(raw), size if big else None)
    return None


class FindsMessages:
    """`find_message` of an IMAP source (one mailbox), kept here beside the search it runs."""

    def reachable(self) -> list[str]:
        return [cast(ImapAccount, self).account]

    def find_message(self, account: str, message_id: str) -> Found | None:
        src = cast(ImapAccount, self)
        if account != src.account:
            return None
        return find(src, message_id)
