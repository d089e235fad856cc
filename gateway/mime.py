"""MIME helpers for `gateway.message`: header decoding, addresses, dates, the part walk.

Everything here works on `email.message.Message` trees from either parser (mail-parser's
compat32 tree or the stdlib's `EmailMessage`) and reads only raw header values
(`raw_items()`), so a header that the structured policy chokes on cannot break a walk.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import email.header
import email.policy
import email.utils
import functools
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message as _EmailMessage
from typing import cast

from gateway import addresses, mime_html

_HEADER_BLOCK_END = re.compile(rb"\r?\n\r?\n")
_MSGID = re.compile(r"<([^<>]*)>")
# a host name (IDN allowed) or an address literal; anything else is what a broken phrase left
# behind, e.g. `_victim@evil.example?=` from an encoded word with a raw ':' in it
_DOMAIN = re.compile(r"(?:\[[^\[\]\s]+\]|[^\s@?=/\\\"'(),;:<>\[\]]+)\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_END = re.compile(r"\r?\n")  # folding; split on it, not matched with the blanks around it
# (`[ \t]*\r?\n[ \t]*` backtracks over every run of blanks: 40,000 spaces cost 22 s)
_BREAKS = re.compile(r"[\t\r\n\x85\u2028\u2029]+")  # left in a value after decoding: one space each run
_ENCODED_WORD_MAX = 64 * 1024  # RFC 2047 decoding of longer values is skipped: hostile, slow
_REGISTRY_MAX = 16 * 1024  # the stdlib header registry needs ~0.4 ms per address: long lists go
# through email.utils.getaddresses instead


# ---------------------------------------------------------------- text and headers


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
    return _CONTROL.sub("", text)


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
        return fold_breaks(_CONTROL.sub("", "".join(chunks))).strip()
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


# ---------------------------------------------------------------- addresses


def parse_addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, normalised address) from raw address-header values.

    The stdlib header registry first (groups, RFC 2047 in and around quotes, a missing
    '>'); `email.utils.getaddresses` when the registry raises. Entries without a usable
    `local@domain` are dropped."""
    out: list[tuple[str, str]] = []
    for raw in values:
        text = unfold(fix_str(raw))
        if text:
            out.extend(_addresses_cached(text) if len(text) <= _CACHED_MAX else _addresses(text))
    return out


# The same mailbox headers come again and again (the owner's own address, regular
# correspondents), and the header registry needs ~0.3 ms for each: results are cached.
_CACHED_MAX = 1024


def _addresses(text: str) -> tuple[tuple[str, str], ...]:
    try:
        if len(text) > _REGISTRY_MAX:
            raise ValueError("too long for the header registry")
        pairs = [(a.display_name, a.addr_spec) for a in _registry(text)]
    except Exception:
        pairs = [(decode_header_value(n), a) for n, a in email.utils.getaddresses([text])]
    out = []
    for name, addr in pairs:
        addr = (addr or "").strip().strip("<>")
        local, at, domain = addr.rpartition("@")
        if not at or not local or not _DOMAIN.match(domain):
            continue
        out.append((fold_breaks(_CONTROL.sub("", fix_str(name))).strip(), addresses.normalize(addr)))
    return tuple(out)


_addresses_cached = functools.lru_cache(maxsize=4096)(_addresses)


def _registry(text: str):
    header = email.policy.default.header_factory("To", text)
    return header.addresses


# ---------------------------------------------------------------- dates


def parse_date(value: str) -> tuple[datetime, int] | None:
    """(aware UTC datetime, original offset in minutes), or None when unusable."""
    try:
        parts = email.utils.parsedate_tz(unfold(value))
        if not parts:
            return None
        offset = parts[9] or 0
        year = parts[0]
        if not 1970 <= year <= 2200 or abs(offset) > 24 * 3600:
            return None
        local = datetime(*parts[:6], tzinfo=timezone(timedelta(seconds=offset)))
        return local.astimezone(UTC), offset // 60
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


def received_date(values: list[str]) -> tuple[datetime, int] | None:
    """The date of the newest (topmost) Received header that has a usable one."""
    for value in values:
        _, sep, tail = value.rpartition(";")
        if sep:
            parsed = parse_date(tail)
            if parsed:
                return parsed
    return None


def message_ids(value: str) -> list[str]:
    """Every `<id>` in a header value, whitespace inside removed, in order, deduplicated."""
    found: dict[str, None] = {}  # ordered set: References can hold thousands of ids
    for m in _MSGID.finditer(value):
        mid = "<" + "".join(m.group(1).split()) + ">"
        if mid != "<>":
            found[mid] = None
    seen = list(found)
    if not seen:
        bare = re.sub(r"\s+", "", value)
        if "@" in bare and "<" not in bare and ">" not in bare:
            seen.append(f"<{bare}>")
    return seen


# ---------------------------------------------------------------- HTML


html_to_text = mime_html.html_to_text  # linear and bounded: see gateway.mime_html


# ---------------------------------------------------------------- the part walk


@dataclass
class Part:
    """One attachment found by the walk, before it becomes a frozen `Attachment`."""

    filename: str
    content_type: str
    payload: bytes
    inline: bool
    content_id: str


@dataclass
class Bodies:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def _param_text(value) -> str:
    """A MIME parameter as text: RFC 2231 tuples collapsed, RFC 2047 words decoded."""
    if isinstance(value, tuple):  # (charset, language, value) from RFC 2231
        charset, _, raw = value
        data = raw.encode("latin-1", "surrogateescape") if isinstance(raw, str) else raw
        value = decode_bytes(data, charset or "utf-8")[0]
    return decode_header_value(value or "")


def _filename(part: _EmailMessage) -> str:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = part.get_param(param, None, header=header)
        except Exception:
            continue
        if value:
            name = safe_filename(_param_text(value))
            if name:
                return name
    return ""


FILENAME_MAX_BYTES = 255  # what file systems take for one name


def safe_filename(name: str) -> str:
    """A file name to store: the last path component, on one line, never "." or "..", at most
    255 bytes of UTF-8 (the extension kept when short); "" when nothing usable is left."""
    name = fold_breaks(_CONTROL.sub("", name)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in (".", ".."):
        return ""
    raw = name.encode("utf-8", "surrogatepass")
    if len(raw) <= FILENAME_MAX_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext}" if dot and stem and len(ext.encode()) <= 16 else ""
    room = FILENAME_MAX_BYTES - len(ext.encode("utf-8", "surrogatepass"))
    stem = (stem if ext else name).encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore").rstrip()
    return (stem + ext) if stem else ""


def _disposition(part: _EmailMessage) -> str:
    for name, value in part.raw_items():
        if name.lower() == "content-disposition":
            return fix_str(value).split(";", 1)[0].strip().lower()
    return ""


def _header(part: _EmailMessage, wanted: str) -> str:
    for name, value in part.raw_items():
        if name.lower() == wanted:
            return unfold(fix_str(value))
    return ""


def content_type(part: _EmailMessage) -> str:
    raw = _header(part, "content-type").split(";", 1)[0].strip().strip('"').lower()
    if raw.count("/") == 1 and all(raw.split("/")):
        return raw
    return part.get_default_type()


def _decoded_payload(part: _EmailMessage, blobs=None) -> bytes:
    if blobs is not None:  # a body cut out before parsing (gateway.mime_blobs)
        data = blobs.decode(part)
        if data is not None:
            return data
        blobs.restore_part(part)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _embedded_message(part: _EmailMessage, blobs=None) -> bytes:
    """The bytes of a message/* part (rfc822, delivery-status, …) as written."""
    if blobs is not None:
        blobs.restore_part(part)  # flattened below: its text must be the original
    if not part.is_multipart():  # the parser left it unparsed: take the body as it is
        return _decoded_payload(part)
    data = b"".join(_flatten(m) for m in _parts(part))
    cte = _header(part, "content-transfer-encoding").lower()
    if cte in ("base64", "quoted-printable"):  # not allowed for message/*, but seen
        with contextlib.suppress(Exception):
            data = base64.b64decode(data) if cte == "base64" else quopri.decodestring(data)
    return data


def _parts(container: _EmailMessage) -> list[_EmailMessage]:
    """The parts of a multipart or message/* part: its payload is their list (typeshed types
    get_payload() for every kind of part at once)."""
    return cast("list[_EmailMessage]", container.get_payload())


def _flatten(msg: _EmailMessage) -> bytes:
    try:
        return msg.as_bytes(policy=email.policy.compat32)
    except Exception:
        return str(msg).encode("utf-8", "surrogateescape")


def walk(root: _EmailMessage, blobs=None) -> Bodies:
    """Bodies and attachments of a tree. Iterative (no recursion limit), message/* parts
    are attachments and not descended into, so an attached mail's text is not ours.

    `blobs` (a `gateway.mime_blobs.Blobs`) when the tree was parsed from a skeleton: long
    base64 bodies are then decoded straight from the raw bytes."""
    out = Bodies()
    stack: list[tuple[_EmailMessage, bool]] = [(root, False)]  # (part, inside an attached container)
    counter = 0
    while stack:
        part, in_attachment = stack.pop()
        ctype = content_type(part)
        disposition = _disposition(part)
        # get_payload() without decode only for containers: on a leaf, compat32 applies
        # the declared charset and raises for "undefined" or a NUL in its name.
        is_container = part.is_multipart()
        if is_container and not ctype.startswith("message/"):
            inside = in_attachment or disposition == "attachment"
            stack.extend((child, inside) for child in reversed(_parts(part)))
            continue
        counter += 1
        filename = _filename(part)
        content_id = _header(part, "content-id")
        if ctype.startswith("message/"):
            data = _embedded_message(part, blobs)
            if not filename:
                if ctype in ("message/rfc822", "message/global"):
                    inner = _parts(part)[0] if is_container and part.get_payload() else None
                    subject = decode_header_value(_header(inner, "subject")) if inner is not None else ""
                    filename = _safe_name(subject or "message") + ".eml"
                else:
                    filename = ctype.split("/", 1)[1] + ".txt"
            out.parts.append(Part(filename, ctype, data, False, content_id))
            continue
        if ctype.startswith("multipart/"):  # a multipart the parser could not split
            out.defects.append(f"{ctype} without usable boundary: read as text")
            ctype = "text/plain"
        is_body = (
            ctype in ("text/plain", "text/html")
            and not filename
            and disposition != "attachment"
            and not in_attachment
        )
        data = _decoded_payload(part, blobs)
        if is_body:
            try:
                charset = part.get_param("charset", None)
            except Exception:
                charset = None
            charset = fix_str(charset) if isinstance(charset, str) else None
            text, fallback = decode_bytes(data, charset)
            if fallback:
                out.defects.append(f"charset {charset!r} unusable: decoded as UTF-8/Windows-1252")
            text = text.replace("\x00", "")
            (out.html if ctype == "text/html" else out.text).append(text)
            continue
        if not filename:
            ext = mimetypes.guess_extension(ctype) or ".bin"
            stem = _safe_name(content_id.strip("<>").split("@", 1)[0]) if content_id else ""
            filename = f"{stem or f'part-{counter}'}{ext}"
        inline = bool(content_id) and disposition != "attachment"
        out.parts.append(Part(filename, ctype, data, inline, content_id))
    return out


def _safe_name(text: str) -> str:
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", text).strip(" ._")
    return name[:120]
