"""The part walk: the text and HTML bodies and the attachments of a MIME tree (`walk`), with
safe file names and message/* parts kept whole as attachments.
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message as _EmailMessage
from typing import cast

from gateway.message.mime_text import CONTROL, decode_bytes, decode_header_value, fix_str, fold_breaks, unfold

__all__ = ["FILENAME_MAX_BYTES", "Bodies", "Part", "content_type", "safe_filename", "walk"]


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
    name = fold_breaks(CONTROL.sub("", name)).replace("\\", "/").rsplit("/", 1)[-1].strip()
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
    if blobs is not None:  # a body cut out before parsing (gateway.message.mime_blobs)
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

    `blobs` (a `gateway.message.mime_blobs.Blobs`) when the tree was parsed from a skeleton: long
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
        is_body = ctype in ("text/plain", "text/html") and not filename and disposition != "attachment" and not in_attachment
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
