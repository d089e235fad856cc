"""How a mail looks in Tryton, and how the connector recognises it again.

A mail attached to a record becomes, on that record: one `ir.attachment` holding the raw
`.eml`, one `ir.attachment` per attached file, and one `ir.note` with a summary. Each of them
carries, at the end of its description (note: message), machine lines the connector searches:

    Message-ID: <m1@example.org>
    Gateway-Mail: <content hash>        (mail identity = Message-ID + content hash)
    Gateway-Part: eml | note | 0, 1, …  (which piece of the mail this is)

The first line of an attachment's description is Tryton's "Summary" column: a person sees
who wrote what. Lookups use `like` on these lines, then parse them exactly (`parse()`), so a
Message-ID that contains `%`, `_` or `\\` cannot match anything but itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from gateway.crm.base import AttachmentData, EmailRecord

MID, KEY, PART, SHA, WHO = "Message-ID", "Gateway-Mail", "Gateway-Part", "SHA256", "Participants"
_UNSAFE_NAME = re.compile(r"[\x00-\x1f/\\]+")


def like_escape(text: str) -> str:
    """Escape a literal for Tryton's `like`/`ilike` (backslash first, then % and _)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def address_pattern(address: str) -> str:
    """An `ilike` pattern for an address: exact, except that every non-ASCII character is a
    one-character wildcard, because SQLite folds ASCII case only ("ZOË" vs "zoë"). The
    caller compares `addresses.key()` afterwards, which restores exactness."""
    return "".join(ch if ord(ch) < 128 else "_" for ch in like_escape(address))


def line_pattern(name: str, value: str) -> str:
    """A `like` pattern finding one machine line anywhere in a description."""
    return f"%\n{name}: {like_escape(value)}\n%"


@dataclass(frozen=True)
class Marker:
    message_id: str
    key: str
    part: str
    sha256: str = ""
    participants: tuple[str, ...] = ()


def parse(text: str | None) -> Marker | None:
    """The machine lines of a description, or None when the gateway did not write it."""
    if not text or f"\n{KEY}: " not in text:
        return None
    fields: dict[str, str] = {}
    for line in text.split("\n"):
        name, sep, value = line.partition(": ")
        if sep and name in (MID, KEY, PART, SHA, WHO) and name not in fields:
            fields[name] = value
    if KEY not in fields or PART not in fields:
        return None
    who = tuple(a for a in fields.get(WHO, "").split("\t") if a)
    return Marker(fields.get(MID, ""), fields[KEY], fields[PART], fields.get(SHA, ""), who)


def email_id(message_id: str, content_hash: str) -> str:
    """The id of a stored mail: the same on every record it is attached to, and computable
    without asking Tryton (one mail = several attachments, on several records)."""
    return hashlib.sha256(f"{_one_line(message_id)}\n{content_hash}".encode()).hexdigest()[:24]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _machine(mail: EmailRecord, part: str, sha: str = "") -> str:
    lines = [f"{MID}: {_one_line(mail.message_id)}", f"{KEY}: {mail.content_hash}", f"{PART}: {part}"]
    if sha:
        lines.append(f"{SHA}: {sha}")
    if part in ("eml", "note"):
        who = [_one_line(a) for a in (mail.from_address, *mail.to, *mail.cc) if a]
        lines.append(f"{WHO}: " + "\t".join(who))
    return "\n" + "\n".join(lines) + "\n"


def summary(mail: EmailRecord) -> str:
    arrow = "from" if mail.direction == "inbound" else "to"
    whom = mail.from_address if mail.direction == "inbound" else ", ".join(mail.to) or "?"
    return _one_line(f"Mail {arrow} {whom}: {mail.subject or '(no subject)'}")[:200]


def _filename(name: str, default: str) -> str:
    name = _UNSAFE_NAME.sub(" ", name).strip()
    return name[:150] or default


def eml_values(mail: EmailRecord) -> dict[str, object]:
    date = mail.date.strftime("%Y-%m-%d %H:%M UTC")
    desc = f"{summary(mail)}\nDate: {date}\nFrom: {mail.from_address}\nTo: {', '.join(mail.to)}\n"
    if mail.cc:
        desc += f"Cc: {', '.join(mail.cc)}\n"
    name = _filename(f"{mail.date:%Y-%m-%d} {mail.subject}", "mail") + ".eml"
    return {"name": name, "type": "data", "data": mail.raw or b"", "description": desc + _machine(mail, "eml")}


def file_values(mail: EmailRecord, pos: int, a: AttachmentData) -> dict[str, object]:
    desc = _one_line(f"Attached to the mail {summary(mail)[5:]}")[:200] + "\n"
    return {
        "name": _filename(a.filename, f"attachment-{pos + 1}"),
        "type": "data",
        "data": a.payload,
        "description": desc + _machine(mail, str(pos), a.sha256),
    }


def note_message(mail: EmailRecord) -> str:
    date = mail.date.strftime("%Y-%m-%d %H:%M UTC")
    text = _one_line(mail.text)[:500]
    files = ", ".join(a.filename or "?" for a in mail.attachments)
    body = f"{summary(mail)}\n{date}, {mail.direction}. " + (f"Files: {files}. " if files else "") + "The .eml is attached.\n"
    if text:
        body += f"\n{text}\n"
    return body + _machine(mail, "note")
