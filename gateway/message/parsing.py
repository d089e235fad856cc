"""Message: the parsed, immutable view of one mail.

`parse(raw)` never raises anything but `UnparseableMessage`; everything downstream
(engine, pipeline, connectors) reads these frozen values and never the raw MIME.

Parsing is mail-parser, guarded:

- mail-parser reads every message up to `LARGE_MESSAGE` (5 MB). We use its stdlib tree
  (`MailParser.message`), its defect categories and its failures (a message it cannot
  process falls back to the stdlib parser); its output model (`mail`, `mail_partial`:
  every header decoded twice more) is not built, `_MailParserChecks` skips it.
- Above `LARGE_MESSAGE` mail-parser is skipped and the stdlib parser reads the message:
  mail-parser keeps further copies of every attachment (re-encoded to base64 strings),
  which for a 20 MB mail cost several times its size. `parser` is then "stdlib".
- Header blocks over `MAILPARSER_HEADER_MAX` skip mail-parser too (slow on huge headers).
- Long base64 bodies are cut out before either parser sees the message and decoded
  straight from the raw bytes (`gateway.message.mime_blobs`): the trees are the same, the line
  loop of the feed parser and the decoded copies are not. Up to `LARGE_MESSAGE` the text is
  put back into the tree before mail-parser looks at it, so it sees what it always saw.
- The stdlib parser (default policy, then compat32) when mail-parser fails;
  `UnparseableMessage` when nothing can read the message.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
from datetime import datetime

from gateway.errors import UnparseableMessage
from gateway.message import mime
from gateway.message.build import build_message
from gateway.message.model import Address, Attachment, AutomatedVerdict, Message, automated
from gateway.message.trees import (
    MAILPARSER_HEADER_MAX,
    PARSERS,
    PARSERS_LARGE,
    reject_non_mail,
    without_header_nuls,
)

__all__ = ["LARGE_MESSAGE", "MAILPARSER_HEADER_MAX", "Address", "Attachment", "AutomatedVerdict", "Message", "automated", "parse"]

log = logging.getLogger(__name__)

# Above this size mail-parser is skipped (module docstring): the stdlib parser reads the mail.
LARGE_MESSAGE = 5 * 1024 * 1024


def parse(raw: bytes, *, arrival: datetime | None = None, max_size: int | None = None) -> Message:
    """Parse raw RFC 5322 bytes.

    mail-parser first; the stdlib parser when it fails; `UnparseableMessage` when nothing can.
    Above `max_size` only the headers are parsed (`headers_only=True`), with size and hashes.
    `arrival` is the date of last resort (no usable Date, no Received).
    """
    try:
        raw = bytes(raw)
    except Exception as exc:
        raise UnparseableMessage(f"not bytes: {type(raw).__name__}") from exc
    if not raw.strip():
        raise UnparseableMessage("empty message (0 bytes or only whitespace)")
    try:
        if max_size is not None and len(raw) > max_size:
            return _headers_only(raw, arrival, max_size)
        return _parse_full(raw, arrival)
    except UnparseableMessage:
        raise
    except Exception as exc:  # a bug of ours must quarantine the message, not kill a worker
        log.exception("unexpected failure parsing a message")
        raise UnparseableMessage(f"parser failure: {type(exc).__name__}: {exc}") from exc


def _parse_full(raw: bytes, arrival: datetime | None) -> Message:
    failures: list[str] = []
    readable = without_header_nuls(raw)
    if readable is not raw:
        failures.append("NUL bytes in the header block: removed")
    for name, build in PARSERS_LARGE if len(raw) > LARGE_MESSAGE else PARSERS:
        try:
            tree, defects, blobs = build(readable)
        except RecursionError:
            failures.append(f"{name}: nesting too deep")
            continue
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            continue
        try:
            reject_non_mail(tree, raw)
            bodies = mime.walk(tree, blobs)
            del readable  # the tree holds what it needs: a large mail must not be kept twice
            return build_message(raw, tree, bodies, arrival, name, [*failures, *defects, *bodies.defects])
        except UnparseableMessage:
            raise
        except (Exception, RecursionError) as exc:
            failures.append(f"{name} tree: {type(exc).__name__}: {exc}"[:300])
    raise UnparseableMessage("no parser could read the message: " + "; ".join(failures))


def _headers_only(raw: bytes, arrival: datetime | None, max_size: int) -> Message:
    block = mime.header_block(raw)
    tree = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(block, headersonly=True)
    if len(tree.keys()) == 0:
        raise UnparseableMessage(f"over max size ({len(raw)} > {max_size} bytes) and no headers")
    return build_message(
        raw,
        tree,
        mime.Bodies(),
        arrival,
        "headers-only",
        [f"over max size: {len(raw)} > {max_size} bytes; headers only"],
        headers_only=True,
    )
