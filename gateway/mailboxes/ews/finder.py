"""One mail of an Exchange mailbox by its Message-ID (gateway.mailboxes.base.MessageFinder), for
a person filing by hand a mail the gateway never handled.

FindItem cannot search a folder's subtree ("FindItem only supports shallow or soft-deleted
traversals of a folder", Microsoft's FindItemType.Traversal reference), so the folders a
person's mail lies in are searched one by one: the Inbox and Sent Items (DistinguishedFolderId
`inbox`, `sentitems`), then the watched folders. Each is one FindItem with a Restriction
`IsEqualTo message:InternetMessageId` (exchangelib's `filter(message_id=…)`), then a GetItem of
the one item found, its MimeContent (or only its headers when it is bigger than
`max_message_size`, as the source fetches such a mail).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Protocol

from exchangelib import errors as xerr
from exchangelib.folders import Inbox, SentItems

from gateway.mailboxes.base import Found, SourceRef, same_message_id
from gateway.mailboxes.ews.session import EwsError, EwsSession

# the distinguished folders searched first, with the name the ledger records the copy under
DISTINGUISHED: dict[str, Any] = {"Inbox": Inbox, "Sent Items": SentItems}


class EwsSource(Protocol):
    name: str
    session: EwsSession
    max_size: int

    def reachable(self) -> list[str]: ...

    @property
    def watched(self) -> list[str]: ...

    def folder(self, mailbox: str, name: str, create: bool | None = None) -> Any: ...


def find(src: EwsSource, mailbox: str, message_id: str) -> Found | None:
    if mailbox not in src.reachable():
        return None
    session = src.session
    acct = session.account(mailbox)
    names = list(dict.fromkeys([*DISTINGUISHED, *src.watched]))
    refused: list[EwsError] = []
    for name in names:
        try:
            folder = _open(src, acct, mailbox, name)
            hits = session.call(partial(_search, folder, message_id), f"looking for {message_id} in {name} of {mailbox}")
        except xerr.ErrorFolderNotFound:  # no such folder there: the others go on
            continue
        except (xerr.ErrorAccessDenied, xerr.ErrorImpersonateUserDenied, xerr.ErrorNonExistentMailbox) as exc:
            raise session.rights_error(exc, mailbox) from None  # the mailbox, not a folder: said in words
        except EwsError as exc:  # a folder missing, or the server refusing us: told apart below
            refused.append(exc)
            continue
        for item in hits:
            if isinstance(item, Exception) or not same_message_id(item.message_id or "", message_id):
                continue
            found = _read(src, acct, mailbox, name, item)
            if found is not None:
                return found
    if refused and len(refused) == len(names):  # not one folder answered: the credentials, the
        raise refused[0]  # impersonation right, the mailbox; said as such, not "not there"
    return None


def _search(folder: Any, message_id: str) -> list[Any]:
    return list(folder.filter(message_id=message_id.strip()).only("message_id", "size"))


def _open(src: EwsSource, acct: Any, mailbox: str, name: str) -> Any:
    cls = DISTINGUISHED.get(name)
    if cls is None:
        return src.folder(mailbox, name, create=False)
    return src.session.call(lambda: cls.get_distinguished(root=acct.root), f"opening {name} of {mailbox}")


def _read(src: EwsSource, acct: Any, mailbox: str, folder: str, item: Any) -> Found | None:
    size = item.size or 0
    field = "headers" if size > src.max_size else "mime_content"
    got = src.session.call(
        lambda: list(acct.fetch(ids=[(item.id, item.changekey)], only_fields=[field])), f"reading an item in {folder}"
    )
    if not got or isinstance(got[0], Exception):
        return None  # moved or deleted since the search found it
    ref = SourceRef(src.name, mailbox, folder, item.id)
    if field == "headers":
        raw = "".join(f"{h.name}: {h.value}\r\n" for h in got[0].headers or []).encode() + b"\r\n"
        return Found(ref, raw, size)
    return Found(ref, bytes(got[0].mime_content))
