"""One mail of a Microsoft 365 mailbox by its Message-ID (gateway.mailboxes.base.MessageFinder),
for a person filing by hand a mail the gateway never handled.

"List messages" on the mailbox itself (`GET /users/{id}/messages`, Microsoft's user-list-messages
reference) searches every folder of it, with `$filter=internetMessageId eq '<…>'` (OData
filter, the query-parameters page; a quote inside the value is doubled) and `$select` of the
id, the Message-ID and the parent folder's id. The folder's display name (`GET
/users/{id}/mailFolders/{id}?$select=displayName`, mailfolder-get) names the copy in the
ledger; its MIME comes from `…/messages/{id}/$value` as the source reads new mail.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from gateway.errors import Retryable
from gateway.mailboxes.base import Found, SourceRef, same_message_id
from gateway.mailboxes.graph.listing import GraphMailSource

SELECT = "id,internetMessageId,parentFolderId"
Mime = Callable[[str, str], tuple[bytes | None, int]]  # (mailbox, item id) → (bytes, size); None: gone


def find(src: GraphMailSource, mailbox: str, message_id: str, mime: Mime, max_size: int) -> Found | None:
    wanted = "<" + message_id.strip().strip("<>") + ">"
    query = {"$filter": "internetMessageId eq '" + wanted.replace("'", "''") + "'", "$select": SELECT}
    r = src.client.request("GET", f"/users/{mailbox}/messages?" + urllib.parse.urlencode(query), f"looking for {wanted}")
    if r.status_code == 404:  # the mailbox is gone
        return None
    if r.status_code >= 400:
        raise Retryable(f"graph {src.name}: cannot search {mailbox} for {wanted}: {r.status_code} {r.reason_phrase}")
    for entry in r.json().get("value", []):
        if not same_message_id(entry.get("internetMessageId") or "", wanted):
            continue
        raw, size = mime(mailbox, entry["id"])
        if raw is None:  # moved or deleted since the search found it
            continue
        ref = SourceRef(src.name, mailbox, _folder_name(src, mailbox, entry.get("parentFolderId") or ""), entry["id"])
        return Found(ref, raw, size if size > max_size else None)
    return None


def _folder_name(src: GraphMailSource, mailbox: str, folder_id: str) -> str:
    r = src.client.request(
        "GET",
        f"/users/{mailbox}/mailFolders/{urllib.parse.quote(folder_id, safe='')}?$select=displayName",
        "reading a folder's name",
    )
    if r.status_code >= 400:
        return folder_id  # its id names it well enough for the ledger; the write-back goes by item id
    return str(r.json().get("displayName") or folder_id)
