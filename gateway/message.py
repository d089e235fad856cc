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
  straight from the raw bytes (`gateway.mime_blobs`): the trees are the same, the line
  loop of the feed parser and the decoded copies are not. Up to `LARGE_MESSAGE` the text is
  put back into the tree before mail-parser looks at it, so it sees what it always saw.
- The stdlib parser (default policy, then compat32) when mail-parser fails;
  `UnparseableMessage` when nothing can read the message.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import mailparser

from gateway import addresses, mime, mime_blobs, mime_html
from gateway.errors import UnparseableMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Address:
    name: str  # display name, decoded (RFC 2047 / UTF-8)
    address: str  # normalised: local part as written, domain in Unicode lower case

    @property
    def key(self) -> str:
        return addresses.key(self.address)

    @property
    def domain(self) -> str:
        return addresses.domain_of(self.address)

    @property
    def local(self) -> str:
        return self.address.rpartition("@")[0]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    payload: bytes = field(repr=False)
    inline: bool = False  # inline images (Content-Disposition inline with a Content-ID) don't count
    content_id: str = ""


@dataclass(frozen=True)
class Message:
    raw_size: int
    raw_sha256: str
    message_id: str  # with angle brackets; synthetic ones too
    synthetic_id: bool
    content_hash: str  # sha256 over bodies and attachments, not headers
    subject: str
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime  # aware, UTC
    date_offset_minutes: int  # the original offset of the Date header
    date_source: str  # "date" | "received" | "arrival" | "now" (nothing usable, no arrival given)
    headers: tuple[tuple[str, str], ...]  # (name, decoded value) in order, names as written
    text: str  # the text part; HTML converted to text when there is none
    html: str  # sanitised (gateway.mime_html)
    attachments: tuple[Attachment, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    thread_index: str
    thread_topic: str
    content_type: str  # top-level content type, lower case
    defects: tuple[str, ...] = ()  # what the parser had to work around
    parser: str = "mail-parser"  # "mail-parser" | "stdlib" | "headers-only"
    headers_only: bool = False  # over max_message_size: bodies and attachments not kept

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in order."""
        lname = name.lower()
        return [v for n, v in self.headers if n.lower() == lname]

    def has_header(self, name: str) -> bool:
        lname = name.lower()
        return any(n.lower() == lname for n, _ in self.headers)

    @property
    def counted_attachments(self) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if not a.inline)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail replies to: In-Reply-To first, then References newest first."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid and mid not in seen:
                seen.append(mid)
        return tuple(seen)


@dataclass(frozen=True)
class AutomatedVerdict:
    kind: str  # auto_reply | bounce | list | bulk
    header: str  # the header (and value) that decided, for the trace: "Auto-Submitted: auto-replied"


def automated(message: Message) -> list[AutomatedVerdict]:
    """Which automated kinds this message is (RULES.md `automated`), each with its evidence.

    One verdict per kind, the first header that decided it, in the order
    auto_reply, bounce, list, bulk."""
    found: dict[str, str] = {}

    def note(kind: str, name: str, value: str) -> None:
        if kind not in found:
            shown = value if len(value) <= 200 else value[:197] + "..."
            found[kind] = f"{name}: {shown}"

    for name, value in message.headers:
        lname, token = name.lower(), value.split(";", 1)[0].strip().lower()
        if (lname == "auto-submitted" and token and token != "no") or lname in ("x-autoreply", "x-autorespond"):
            note("auto_reply", name, value)
        elif lname == "return-path" and value.replace(" ", "") in ("<>", ""):
            note("bounce", name, value or "<>")
        elif lname in ("list-id", "list-unsubscribe"):
            note("list", name, value)
        elif lname == "precedence" and token in ("bulk", "junk", "list"):
            note("bulk", name, value)
    if message.content_type == "multipart/report":
        note("bounce", "Content-Type", message.content_type)
    order = ("auto_reply", "bounce", "list", "bulk")
    return [AutomatedVerdict(kind, found[kind]) for kind in order if kind in found]


# ---------------------------------------------------------------- parse

_ADDRESS_FIELDS = {"from": "from_", "sender": "sender", "to": "to", "cc": "cc", "bcc": "bcc",
                   "reply-to": "reply_to"}


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
    readable = _without_header_nuls(raw)
    if readable is not raw:
        failures.append("NUL bytes in the header block: removed")
    for name, build in (_PARSERS_LARGE if len(raw) > LARGE_MESSAGE else _PARSERS):
        try:
            tree, defects, blobs = build(readable)
        except RecursionError:
            failures.append(f"{name}: nesting too deep")
            continue
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            continue
        try:
            _reject_non_mail(tree, raw)
            bodies = mime.walk(tree, blobs)
            del readable  # the tree holds what it needs: a large mail must not be kept twice
            return _build(raw, tree, bodies, arrival, name, [*failures, *defects, *bodies.defects])
        except UnparseableMessage:
            raise
        except (Exception, RecursionError) as exc:
            failures.append(f"{name} tree: {type(exc).__name__}: {exc}"[:300])
    raise UnparseableMessage("no parser could read the message: " + "; ".join(failures))


def _without_header_nuls(raw: bytes) -> bytes:
    """`raw` with the NUL bytes of its header block removed (`raw` itself when it has none).

    A NUL is never part of a header, but one in a header name makes the parsers read the
    whole header block as body, and the mail then looks like a stray binary file."""
    block = mime.header_block(raw)
    if b"\x00" not in block:
        return raw
    return block.replace(b"\x00", b"") + raw[len(block):]


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
# Above this size mail-parser is skipped (module docstring): the stdlib parser reads the mail.
LARGE_MESSAGE = 5 * 1024 * 1024

_PARSERS = (("mail-parser", _with_mailparser), ("stdlib", _with_stdlib), ("stdlib", _with_compat32))
_PARSERS_LARGE = (("stdlib", _large(email.policy.default)), ("stdlib", _large(email.policy.compat32)))


def _reject_non_mail(tree, raw: bytes) -> None:
    """No header at all and binary content: a stray file, not a mail."""
    if len(tree.keys()) == 0 and b"\x00" in raw[:65536]:
        raise UnparseableMessage("no headers and binary content: not a mail message")


def _headers_only(raw: bytes, arrival: datetime | None, max_size: int) -> Message:
    block = mime.header_block(raw)
    tree = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(block, headersonly=True)
    if len(tree.keys()) == 0:
        raise UnparseableMessage(f"over max size ({len(raw)} > {max_size} bytes) and no headers")
    return _build(raw, tree, mime.Bodies(), arrival, "headers-only",
                  [f"over max size: {len(raw)} > {max_size} bytes; headers only"], headers_only=True)


def _build(raw, tree, bodies: mime.Bodies, arrival, parser: str, defects: list[str],
           headers_only: bool = False) -> Message:
    headers = tuple((name, mime.decode_header_value(value)) for name, value in mime.raw_headers(tree))
    raw_by_name: dict[str, list[str]] = {}
    for name, value in mime.raw_headers(tree):
        raw_by_name.setdefault(name.lower(), []).append(value)

    def first(name: str) -> str:
        values = raw_by_name.get(name)
        return mime.decode_header_value(values[0]) if values else ""

    addrs = {
        attr: tuple(Address(n, a) for n, a in mime.parse_addresses(raw_by_name.get(h, [])))
        for h, attr in _ADDRESS_FIELDS.items()
    }
    date, offset, date_source = _date(raw_by_name, arrival)

    text = "\n".join(t for t in bodies.text if t.strip()) if bodies.text else ""
    html_raw = "\n".join(bodies.html)
    converted = mime_html.convert(html_raw, want_text=not text)
    text = text or converted.text
    html = converted.html
    if converted.truncated:
        defects.append(f"HTML body of {len(html_raw)} characters: text and sanitised HTML from its first "
                       f"{mime_html.HTML_MAX}, at most {mime_html.TEXT_MAX} characters of text")
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
