"""The original sender of a forwarded mail (`who: original_sender`, `forwarded:`).

A user who forwards a customer's mail to the BCC intake is the From of what arrives; the
customer is the sender of the mail inside. Two shapes carry it:

- a `message/rfc822` (or `message/global`) part: "forward as attachment" (Outlook, Thunderbird);
  its own From (else Sender) header is read;
- a forwarded-header block in the text: a marker line ("---------- Forwarded message ---------",
  "-----Original Message-----", "Begin forwarded message:", a line of underscores, and the
  German/French/Spanish/Italian/Dutch variants) followed within a few lines by `From:` (`Von:`,
  `De:`, `Da:`, `Van:`, `Från:`, `Fra:`) with an address (`Name <a@b>`, `Name [mailto:a@b]`, `a@b`).

The first one found wins: the attached original, else the first (outermost) block.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass

from gateway.message import mime
from gateway.message.parsing import Address, Message

_MARKER = re.compile(
    r"^[\s>*]*(?:-{2,}\s*(?:forwarded message|original message|weitergeleitete nachricht|original-nachricht|"
    r"message transféré|message d'origine|mensaje reenviado|mensaje original|messaggio inoltrato|"
    r"messaggio originale|doorgestuurd bericht|oorspronkelijk bericht)\s*-{2,}"
    r"|begin forwarded message:|anfang der weitergeleiteten nachricht:|début du message réexpédié\s*:"
    r"|_{10,})\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_FROM_LINE = re.compile(r"^[\s>*]*(?:from|von|de|da|van|från|fra)\s*:\s*\**\s*(.+?)\s*$", re.IGNORECASE)
_MAILTO = re.compile(r"\[mailto:([^\]\s]+)\]", re.IGNORECASE)
_BARE = re.compile(r"[^\s<>\"'()\[\],;:]+@[^\s<>\"'()\[\],;:]+\.[^\s<>\"'()\[\],;:]+")
_LOOKAHEAD = 8  # header lines after the marker in which From: must appear


@dataclass(frozen=True)
class Forwarded:
    senders: tuple[Address, ...]
    evidence: str  # for the trace: "message/rfc822 part 'x.eml'" or "forwarded-header block: From: …"


def original_sender(message: Message) -> Forwarded | None:
    """The forwarded original's sender, or None when the mail carries no forward."""
    return _from_attached(message) or _from_text(message.text)


def _from_attached(message: Message) -> Forwarded | None:
    for att in message.attachments:
        if att.content_type not in ("message/rfc822", "message/global") or not att.payload:
            continue
        block = mime.header_block(att.payload)
        try:
            tree = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(block, headersonly=True)
            values = tree.get_all("From") or tree.get_all("Sender") or []
            found = mime.parse_addresses([str(v) for v in values])
        except Exception:  # a hostile inner header must not fail the message: no forward then
            continue
        if found:
            return Forwarded(tuple(Address(n, a) for n, a in found), f"message/rfc822 part '{att.filename or '(unnamed)'}'")
    return None


def _from_text(text: str) -> Forwarded | None:
    if not text:
        return None
    for marker in _MARKER.finditer(text[:200_000]):
        lines = text[marker.end() :].lstrip("\r\n").splitlines()[:_LOOKAHEAD]
        for line in lines:
            m = _FROM_LINE.match(line)
            if not m:
                continue
            addr = _address(m.group(1))
            if addr is not None:
                return Forwarded((addr,), f"forwarded-header block: {line.strip()[:120]}")
            break
    return None


def _address(value: str) -> Address | None:
    value = value.strip().strip("*").strip()
    mailto = _MAILTO.search(value)
    if mailto:
        got = mime.parse_addresses([mailto.group(1)])
        name = value[: mailto.start()].strip().strip('"').strip()
        return Address(name, got[0][1]) if got else None
    found = mime.parse_addresses([value])
    if found and "@" in found[0][1]:
        return Address(found[0][0], found[0][1])
    bare = _BARE.search(value)
    if bare:
        got = mime.parse_addresses([bare.group(0)])
        if got:
            name = value[: bare.start()].strip().strip('<"(').strip()
            return Address(name, got[0][1])
    return None
