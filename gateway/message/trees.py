"""The parsers that turn raw bytes into a MIME tree, each as `build(raw) -> (tree, defects,
blobs)`: mail-parser (guarded: its output model is not built, its logging is quietened), the
stdlib parser with the default policy and with compat32, and for large mail the stdlib parser
on a skeleton whose long base64 bodies stay in the raw bytes (`gateway.message.mime_blobs`).
gateway/message/parsing.py tries them in order.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging

import mailparser

from gateway.errors import UnparseableMessage
from gateway.message import mime, mime_blobs

__all__ = ["MAILPARSER_HEADER_MAX", "PARSERS", "PARSERS_LARGE", "reject_non_mail", "without_header_nuls"]


def without_header_nuls(raw: bytes) -> bytes:
    """`raw` with the NUL bytes of its header block removed (`raw` itself when it has none).

    A NUL is never part of a header, but one in a header name makes the parsers read the
    whole header block as body, and the mail then looks like a stray binary file."""
    block = mime.header_block(raw)
    if b"\x00" not in block:
        return raw
    return block.replace(b"\x00", b"") + raw[len(block) :]


class _MailParserLog(logging.Filter):
    """mail-parser logs what it could not decode at `error`, with raw header fragments (NULs,
    escape sequences) in the text. What it worked around is in `Message.defects`; its own
    lines are shown only with debug logging, as debug, with control characters escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        text = record.getMessage()
        record.msg = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:500])
        record.args = ()
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


for _name in ("mailparser", "mailparser.core", "mailparser.utils", "mailparser.const"):
    logging.getLogger(_name).addFilter(_MailParserLog())


class _MailParserChecks(mailparser.MailParser):
    """mail-parser without its output model.

    `MailParser.parse()` ends by building `mail` and `mail_partial`, dicts of every header
    and part decoded once more each; we read only `message` and `defects_categories`.
    Everything before that (the header, date and Received checks, the part walk with its
    defects, the body and attachment handling that fails on broken MIME) runs as usual."""

    def _make_mail(self, complete=True):
        return {}


def _with_mailparser(raw: bytes):
    if len(mime.header_block(raw)) > MAILPARSER_HEADER_MAX:
        raise ValueError(f"header block over {MAILPARSER_HEADER_MAX} bytes: skipped (slow on huge headers)")
    skeleton, blobs = mime_blobs.cut(raw)

    def tree():  # what mailparser.parse_from_bytes() parses, from the skeleton
        nonlocal blobs
        if blobs is not None:
            parsed = email.message_from_bytes(skeleton)
            if blobs.restore_all(parsed):
                return parsed
            blobs = None  # a marker was not where it belongs: parse the raw bytes after all
        return email.message_from_bytes(raw)

    parsed = _MailParserChecks._parse_guarded(tree)
    defects = sorted(parsed.defects_categories)
    return parsed.message, [f"mail-parser: {d}" for d in defects], blobs


def _with_stdlib(raw: bytes):
    tree = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    return tree, [type(d).__name__ for d in tree.defects], None


def _with_compat32(raw: bytes):
    tree = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    return tree, [type(d).__name__ for d in tree.defects], None


def _large(policy):
    """The stdlib parser on the skeleton; the long base64 bodies stay in the raw bytes until
    the walk decodes them, one at a time, without a copy of their text."""

    def build(raw: bytes):
        skeleton, blobs = mime_blobs.cut(raw)
        tree = email.parser.BytesParser(policy=policy).parsebytes(skeleton)
        del skeleton
        return tree, [type(d).__name__ for d in tree.defects], blobs

    return build


# mail-parser decodes header values by repeated string concatenation: 1 MB of encoded
# words took 9.5 s. Header blocks this large are hostile; the stdlib parser takes them.
MAILPARSER_HEADER_MAX = 256 * 1024

# tried in this order up to gateway.message.parsing.LARGE_MESSAGE, and above it
PARSERS = (("mail-parser", _with_mailparser), ("stdlib", _with_stdlib), ("stdlib", _with_compat32))
PARSERS_LARGE = (("stdlib", _large(email.policy.default)), ("stdlib", _large(email.policy.compat32)))


def reject_non_mail(tree, raw: bytes) -> None:
    """No header at all and binary content: a stray file, not a mail."""
    if len(tree.keys()) == 0 and b"\x00" in raw[:65536]:
        raise UnparseableMessage("no headers and binary content: not a mail message")
