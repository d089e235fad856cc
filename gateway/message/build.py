"""From a parsed MIME tree to the frozen `Message`: decoded headers and addresses, the date
(Date, else Received, else arrival), text and sanitised HTML, attachments with their hashes,
the content hash, Message-ID (synthetic when absent) and the thread's ids.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from gateway.message import mime, mime_html
from gateway.message.model import Address, Attachment, Message

__all__ = ["build_message"]

_ADDRESS_FIELDS = {"from": "from_", "sender": "sender", "to": "to", "cc": "cc", "bcc": "bcc", "reply-to": "reply_to"}


def build_message(
    raw, tree, bodies: mime.Bodies, arrival, parser: str, defects: list[str], headers_only: bool = False
) -> Message:
    headers = tuple((name, mime.decode_header_value(value)) for name, value in mime.raw_headers(tree))
    raw_by_name: dict[str, list[str]] = {}
    for name, value in mime.raw_headers(tree):
        raw_by_name.setdefault(name.lower(), []).append(value)

    def first(name: str) -> str:
        values = raw_by_name.get(name)
        return mime.decode_header_value(values[0]) if values else ""

    addrs = {
        attr: tuple(Address(n, a) for n, a in mime.parse_addresses(raw_by_name.get(h, []))) for h, attr in _ADDRESS_FIELDS.items()
    }
    date, offset, date_source = _date(raw_by_name, arrival)

    text = "\n".join(t for t in bodies.text if t.strip()) if bodies.text else ""
    html_raw = "\n".join(bodies.html)
    converted = mime_html.convert(html_raw, want_text=not text)
    text = text or converted.text
    html = converted.html
    if converted.truncated:
        defects.append(
            f"HTML body of {len(html_raw)} characters: text and sanitised HTML from its first "
            f"{mime_html.HTML_MAX}, at most {mime_html.TEXT_MAX} characters of text"
        )
    attachments = tuple(_attachment(p) for p in bodies.parts)
    bodies.parts.clear()  # the payloads now live in the frozen Attachments only

    if headers_only:
        content_hash = hashlib.sha256(raw).hexdigest()
    else:
        h = hashlib.sha256()
        for chunk in (text, html_raw):
            h.update(chunk.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        for att in attachments:
            h.update(att.sha256.encode("ascii"))
            h.update(b"\x00")
        content_hash = h.hexdigest()

    subject = first("subject")
    ids = mime.message_ids(first("message-id"))
    if ids:
        message_id, synthetic = ids[0], False
    else:
        seed = "|".join((first("date"), first("from"), subject, text))
        digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        message_id, synthetic = f"<{digest}@synthetic.crm-gateway>", True

    refs = tuple(mid for value in raw_by_name.get("references", []) for mid in mime.message_ids(mime.unfold(mime.fix_str(value))))
    irt = tuple(mid for value in raw_by_name.get("in-reply-to", []) for mid in mime.message_ids(mime.unfold(mime.fix_str(value))))
    return Message(
        raw_size=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        message_id=message_id,
        synthetic_id=synthetic,
        content_hash=content_hash,
        subject=subject,
        date=date,
        date_offset_minutes=offset,
        date_source=date_source,
        headers=headers,
        text=text,
        html=html,
        attachments=attachments,
        in_reply_to=tuple(dict.fromkeys(irt)),
        references=tuple(dict.fromkeys(refs)),
        thread_index=first("thread-index"),
        thread_topic=first("thread-topic"),
        content_type=mime.content_type(tree),
        defects=tuple(dict.fromkeys(defects)),
        parser=parser,
        headers_only=headers_only,
        **addrs,
    )


def _attachment(part: mime.Part) -> Attachment:
    return Attachment(
        filename=part.filename,
        content_type=part.content_type,
        size=len(part.payload),
        sha256=hashlib.sha256(part.payload).hexdigest(),
        payload=part.payload,
        inline=part.inline,
        content_id=part.content_id,
    )


def _date(raw_by_name: dict[str, list[str]], arrival: datetime | None) -> tuple[datetime, int, str]:
    for value in raw_by_name.get("date", [])[:1]:
        parsed = mime.parse_date(mime.fix_str(value))
        if parsed:
            return (*parsed, "date")
    parsed = mime.received_date([mime.unfold(mime.fix_str(v)) for v in raw_by_name.get("received", [])])
    if parsed:
        return (*parsed, "received")
    if arrival is not None:
        if arrival.tzinfo is None:
            arrival = arrival.replace(tzinfo=UTC)
        offset = arrival.utcoffset()
        return arrival.astimezone(UTC), int(offset.total_seconds() // 60) if offset else 0, "arrival"
    return datetime.now(UTC), 0, "now"
