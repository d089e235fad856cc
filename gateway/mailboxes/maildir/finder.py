"""One mail of a Maildir by its Message-ID (gateway.mailboxes.base.MessageFinder), for a
person filing by hand a mail the gateway never handled.

There is no server to search: the files of the inbox (the root's new/ and cur/), the watched
folders and a `Sent` folder are opened one by one and only their headers read (at most
HEADER_BYTES each), the same work a mail client's search does on a Maildir.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from gateway.errors import Permanent
from gateway.mailboxes.base import Found, SourceRef, same_message_id
from gateway.mailboxes.maildir.layout import MaildirLayout, item_key

HEADER_BYTES = 64 * 1024  # a header block longer than this is not a mail a person reads
SENT = "Sent"  # the name mail clients give a Maildir's sent folder (no special use here)


def find(source: str, account: str, layout: MaildirLayout, watched: list[str], message_id: str) -> Found | None:
    for folder in dict.fromkeys(["INBOX", *watched, SENT]):
        try:
            files = sorted(layout.files(folder))
        except Permanent:  # a folder name the Maildir refuses: nothing of it to search
            continue
        for path in files:
            if same_message_id(_message_id(path), message_id):
                return Found(SourceRef(source, account, folder, item_key(path.name)), path)
    return None


def _message_id(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES).split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    except OSError:  # moved or deleted meanwhile
        return ""
    return str(BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID", "") or "")
