"""Header text from raw values: clean strings from 8-bit bytes, unfolding, RFC 2047 decoding,
charset decoding with fallbacks, and the raw header block and header list of a tree. Every
function reads raw values (`raw_items()`), so a header the structured policy chokes on cannot
break a walk.
"""

from __future__ import annotations

import codecs
import email.header
import re
from email.message import Message as _EmailMessage

__all__ = ["CONTROL", "decode_bytes", "decode_header_value", "fix_str", "fold_breaks", "header_block", "raw_headers", "unfold"]

_HEADER_BLOCK_END = re.compile(rb"\r?\n\r?\n")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_END = re.compile(r"\r?\n")  # folding; split on it, not matched with the blanks around it
# (`[ \t]*\r?\n[ \t]*` backtracks over every run of blanks: 40,000 spaces cost 22 s)
_BREAKS = re.compile(r"[\t\r\n\x85\u2028\u2029]+")  # left in a value after decoding: one space each run
_ENCODED_WORD_MAX = 64 * 1024  # RFC 2047 decoding of longer values is skipped: hostile, slow


def fix_str(value: object) -> str:
    """A clean `str` from a raw header value: 8-bit bytes (kept by the parsers as
    surrogate escapes) read as UTF-8, else Windows-1252; no NULs or control characters."""
    if isinstance(value, email.header.Header):
        value = str(value)
    text = value if isinstance(value, str) else str(value or "")
    if not text.isascii():
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # lone surrogates that are no escaped bytes
            raw = text.encode("utf-8", "replace")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", "replace")
    return CONTROL.sub("", text)


def unfold(value: str) -> str:
    if "\n" not in value:
        return value.strip()
    lines = _LINE_END.split(value)
    return " ".join(line.strip(" \t") for line in lines).strip()


def fold_breaks(text: str) -> str:
    """No line breaks or tabs in a value a CRM may put into a header of its own: an encoded
    `=0D=0ABcc: x` must not become a header line. Each run becomes one space."""
    return _BREAKS.sub(" ", text)


def decode_header_value(value: object) -> str:
    """Unfolded, RFC 2047-decoded header text on one line (`fold_breaks`); never raises."""
    text = fold_breaks(unfold(fix_str(value)))
    if "=?" not in text or len(text) > _ENCODED_WORD_MAX:
        return text
    try:
        chunks = []
        for data, charset in email.header.decode_header(text):
            if isinstance(data, str):
                chunks.append(data)
            else:
                chunks.append(decode_bytes(data, charset or "utf-8")[0])
        return fold_breaks(CONTROL.sub("", "".join(chunks))).strip()
    except Exception:  # a malformed encoded word: keep the text as written
        return text


def _text_codec(charset: str | None) -> str | None:
    """The codec name for a MIME charset, or None when Python has no text codec for it."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    if name in ("unknown-8bit", "x-unknown", "8bit", "default"):
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode with the declared charset; UTF-8, then Windows-1252 when it fails.

    Returns the text and whether the declared charset had to be abandoned."""
    codec = _text_codec(charset)
    if codec and codec not in ("ascii", "us-ascii"):
        try:
            return data.decode(codec), False
        except (UnicodeError, LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8"), codec is None and (charset or "").lower() not in ("", "us-ascii", "ascii")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), True


def header_block(raw: bytes) -> bytes:
    """The bytes up to (and including) the first blank line; all of it when there is none."""
    m = _HEADER_BLOCK_END.search(raw)
    return raw[: m.end()] if m else raw


def raw_headers(msg: _EmailMessage) -> list[tuple[str, str]]:
    """(name, raw value) in order, names cleaned, values as the parser kept them."""
    return [(fix_str(n).strip(), fix_str(v) if not isinstance(v, str) else v) for n, v in msg.raw_items()]
