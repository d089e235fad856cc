"""How a note carries its key where the CRM has no field for it (Tryton, vtiger): in a
trailing marker line of the text a person reads.

    Call back about the quote.          ← the title, when the note has one
                                        ← a blank line
    Ann asked for a quote …             ← the text, exactly as written (several lines)
                                        ← a blank line
    [crm-gateway note 3f1c…e2 +title]   ← the marker: `tag(key)`, and "+title" when a title leads

The marker holds a digest of the key, not the key itself: short, and made only of lower-case
hex, so it is safe in a `like` pattern (no `%`, `_` or `\\`) and in any query language without
escaping. A connector finds a note again by searching for `MARKER + tag(key)` and then checks
the parsed tag exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.crm.base import NoteData

MARKER = "[crm-gateway note "  # what a search for the gateway's notes looks for
_TITLED = " +title"
_SEPARATOR = "\n\n"


def tag(key: str) -> str:
    """The key's digest in the marker: 24 hex digits (96 bits), the same for the same key."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def search_text(key: str) -> str:
    """A substring only the notes with this key contain (their marker up to the tag)."""
    return MARKER + tag(key)


def compose(note: NoteData) -> str:
    """The stored text of a note: its title (if any), its text, then the marker line."""
    title = " ".join(note.title.split())
    head = title + _SEPARATOR if title else ""
    return f"{head}{note.text}{_SEPARATOR}{MARKER}{tag(note.key)}{_TITLED if title else ''}]"


@dataclass(frozen=True)
class Parsed:
    tag: str
    title: str
    text: str


def parse(stored: str | None) -> Parsed | None:
    """A stored note's parts, or None when the gateway did not write it."""
    if not stored:
        return None
    stored = stored.replace("\r\n", "\n")  # a CRM that stores text as typed in a browser form
    body, sep, marker = stored.rpartition(_SEPARATOR + MARKER)
    if not sep or not marker.endswith("]"):
        return None
    inner = marker[:-1]
    titled = inner.endswith(_TITLED)
    digest = inner.removesuffix(_TITLED)
    if len(digest) != 24 or any(c not in "0123456789abcdef" for c in digest):
        return None
    title = ""
    if titled:
        title, _, body = body.partition(_SEPARATOR)
    return Parsed(digest, title, body)
