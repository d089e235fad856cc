"""MIME helpers for `gateway.message.parsing`: header decoding, addresses, dates, the part walk.

Everything here works on `email.message.Message` trees from either parser (mail-parser's
compat32 tree or the stdlib's `EmailMessage`) and reads only raw header values
(`raw_items()`), so a header that the structured policy chokes on cannot break a walk.

The helpers live by subject: header text in mime_text.py, addresses, dates and Message-IDs in
mime_fields.py, the part walk in mime_walk.py; this module gathers their public names.
"""

from __future__ import annotations

from gateway.message import mime_html
from gateway.message.mime_fields import message_ids, parse_addresses, parse_date, received_date
from gateway.message.mime_text import decode_bytes, decode_header_value, fix_str, fold_breaks, header_block, raw_headers, unfold
from gateway.message.mime_walk import FILENAME_MAX_BYTES, Bodies, Part, content_type, safe_filename, walk

html_to_text = mime_html.html_to_text  # linear and bounded: see gateway.message.mime_html

__all__ = [
    "FILENAME_MAX_BYTES",
    "Bodies",
    "Part",
    "content_type",
    "decode_bytes",
    "decode_header_value",
    "fix_str",
    "fold_breaks",
    "header_block",
    "html_to_text",
    "message_ids",
    "parse_addresses",
    "parse_date",
    "raw_headers",
    "received_date",
    "safe_filename",
    "unfold",
    "walk",
]
