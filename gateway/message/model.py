"""The parsed, immutable view of one mail: `Message` with its `Address`es and `Attachment`s, and
which automated kinds it is (`automated`). gateway/message/parsing.py parses raw bytes into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gateway.message import addresses

__all__ = ["Address", "Attachment", "AutomatedVerdict", "Message", "automated"]


@dataclass(frozen=True)
class Address:
    name: str  # display name, decoded (RFC 2047 / UTF-8)
    address: str  # normalised: local part as written, domain in Unicode lower case

    @property
    def key(self) -> str:
        return addresses.key(self.address)

    @property
    def domain(self) -> str:
        return addresses.domain_of(self.address)

    @property
    def local(self) -> str:
        return self.address.rpartition("@")[0]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    payload: bytes = field(repr=False)
    inline: bool = False  # inline images (Content-Disposition inline with a Content-ID) don't count
    content_id: str = ""


@dataclass(frozen=True)
class Message:
    raw_size: int
    raw_sha256: str
    message_id: str  # with angle brackets; synthetic ones too
    synthetic_id: bool
    content_hash: str  # sha256 over bodies and attachments, not headers
    subject: str
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime  # aware, UTC
    date_offset_minutes: int  # the original offset of the Date header
    date_source: str  # "date" | "received" | "arrival" | "now" (nothing usable, no arrival given)
    headers: tuple[tuple[str, str], ...]  # (name, decoded value) in order, names as written
    text: str  # the text part; HTML converted to text when there is none
    html: str  # sanitised (gateway.message.mime_html)
    attachments: tuple[Attachment, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    thread_index: str
    thread_topic: str
    content_type: str  # top-level content type, lower case
    defects: tuple[str, ...] = ()  # what the parser had to work around
    parser: str = "mail-parser"  # "mail-parser" | "stdlib" | "headers-only"
    headers_only: bool = False  # over max_message_size: bodies and attachments not kept

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in order."""
        lname = name.lower()
        return [v for n, v in self.headers if n.lower() == lname]

    def has_header(self, name: str) -> bool:
        lname = name.lower()
        return any(n.lower() == lname for n, _ in self.headers)

    @property
    def counted_attachments(self) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if not a.inline)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail replies to: In-Reply-To first, then References newest first."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid and mid not in seen:
                seen.append(mid)
        return tuple(seen)


@dataclass(frozen=True)
class AutomatedVerdict:
    kind: str  # auto_reply | bounce | list | bulk
    header: str  # the header (and value) that decided, for the trace: "Auto-Submitted: auto-replied"


def automated(message: Message) -> list[AutomatedVerdict]:
    """Which automated kinds this message is (RULES.md `automated`), each with its evidence.

    One verdict per kind, the first header that decided it, in the order
    auto_reply, bounce, list, bulk."""
    found: dict[str, str] = {}

    def note(kind: str, name: str, value: str) -> None:
        if kind not in found:
            shown = value if len(value) <= 200 else value[:197] + "..."
            found[kind] = f"{name}: {shown}"

    for name, value in message.headers:
        lname, token = name.lower(), value.split(";", 1)[0].strip().lower()
        if (lname == "auto-submitted" and token and token != "no") or lname in ("x-autoreply", "x-autorespond"):
            note("auto_reply", name, value)
        elif lname == "return-path" and value.replace(" ", "") in ("<>", ""):
            note("bounce", name, value or "<>")
        elif lname in ("list-id", "list-unsubscribe"):
            note("list", name, value)
        elif lname == "precedence" and token in ("bulk", "junk", "list"):
            note("bulk", name, value)
    if message.content_type == "multipart/report":
        note("bounce", "Content-Type", message.content_type)
    order = ("auto_reply", "bounce", "list", "bulk")
    return [AutomatedVerdict(kind, found[kind]) for kind in order if kind in found]
