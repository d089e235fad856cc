"""Build test mail with the stdlib, the way a mail client would write it."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

_seq = itertools.count(1)


def make_mail(
    *,
    sender: str = "Bob Ray <bob@x.org>",
    to: str | list[str] = "Me <me@example.com>",
    cc: str | list[str] | None = None,
    subject: str = "Hello",
    body: str = "Hi there.",
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(to) if isinstance(to, list) else to
    if cc:
        m["Cc"] = ", ".join(cc) if isinstance(cc, list) else cc
    m["Subject"] = subject
    n = next(_seq)
    m["Date"] = format_datetime(date or datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=1))) + timedelta(minutes=n))
    m["Message-ID"] = message_id or make_msgid(domain="mail.test")
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    if html:
        m.add_alternative(html, subtype="html")
    for filename, ctype, payload in attachments:
        maintype, subtype = ctype.split("/")
        m.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(m)
