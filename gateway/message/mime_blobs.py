"""Long base64 bodies cut out of a raw mail before it is parsed, decoded from the raw bytes.

The stdlib feed parser (which mail-parser uses too) handles a mail line by line in Python:
a 2 MB attachment is ~27,000 lines, each read, matched against every open boundary and
kept as its own `str` until the part ends. On the benchmark corpus that line loop was most
of the parse time, and on a 20 MB mail the line objects, the joined payload and
`get_payload(decode=True)` (which splits the payload into lines once more) cost ~9× the
message size.

`cut(raw)` finds runs of base64 lines (the body of a base64 part: from the blank line
after its headers up to the next boundary or blank line) and replaces each run by one
marker line. The parser makes the same decisions on the marker as on the lines it stands
for (a line of base64 characters is never a header, a continuation or a boundary line,
and it is never empty), so the skeleton parses into the same tree, only with markers in
the payloads. `Blobs` then either puts the original text back (`restore_tree`, the tree is
then exactly what the raw bytes give) or decodes a part's body straight from the raw bytes
with `binascii` (`decode`), without a `str` copy or a list of lines.
"""

from __future__ import annotations

import binascii
import os
import re
from email.message import Message as _EmailMessage

MIN_RUN = 2048  # shorter runs are cheaper to parse than to cut out

# The payload as the parser stored it (get_payload() would decode or copy it): the email
# package's own attribute, which typeshed does not declare.
_PAYLOAD = "_payload"


def _stored_payload(part: _EmailMessage) -> object:
    return getattr(part, _PAYLOAD)


_CHUNK = 1 << 20  # validation works on slices of at most this size
# The marker: a line of base64 characters (so the parser treats it like the lines it stands
# for), random per process, followed by the run's number. A mail that happens to contain the
# prefix is parsed as it is.
_PREFIX = "GWBLOB" + os.urandom(8).hex() + "N"
_PREFIX_BYTES = _PREFIX.encode("ascii")
_MARKER = re.compile(re.escape(_PREFIX) + r"(\d{8})")
_WHOLE = re.compile(re.escape(_PREFIX) + r"(\d{8})(?:\r?\n)?")  # a body that is one run
_BASE64_LINE_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n"


class _Next:
    """The next occurrence of `needle` at or after a position, with the last answer cached
    (the searches only move forward, so the whole scan stays linear)."""

    def __init__(self, data: bytes, needle: bytes) -> None:
        self.data, self.needle, self.at = data, needle, -2

    def __call__(self, pos: int) -> int:
        if self.at == -1 or (self.at >= pos and self.at != -2):
            return self.at
        self.at = self.data.find(self.needle, pos)
        return self.at


def _first(*found: int) -> int:
    hits = [f for f in found if f >= 0]
    return min(hits) if hits else -1


def _only_base64_lines(raw: bytes, start: int, end: int) -> bool:
    """raw[start:end] is whole non-empty lines of base64 characters, each ending in LF or CRLF."""
    if raw[start : start + 1] in (b"\r", b"\n") or raw[end - 1 : end] != b"\n":
        return False
    if raw.count(b"\r", start, end) != raw.count(b"\r\n", start, end):
        return False  # a lone CR ends a line for the parser: keep such text as it is
    return all(not raw[at : min(end, at + _CHUNK)].translate(None, _BASE64_LINE_CHARS) for at in range(start, end, _CHUNK))


_classes = bytearray(b"!" * 256)  # base64 characters -> "A"; CR, LF kept; the rest "!"
for _c in _BASE64_LINE_CHARS[:-2]:
    _classes[_c] = ord("A")
_classes[13], _classes[10] = 13, 10
_LINE_CLASS = bytes(_classes)


def _even_run(raw: bytes, start: int, dash: _Next) -> int:
    """The common shape, checked with a few passes at memcmp speed: lines of one length
    (the encoder's), a shorter last one, up to the next boundary ("\n-") or the end,
    maybe followed by blank lines. Returns the end of the run (after its last line ending)
    or -1 when the body is not exactly that."""
    first = raw.find(b"\n", start)
    if first <= start or raw[start:first].rstrip(b"\r").translate(None, _BASE64_LINE_CHARS[:-2]):
        return -1
    eol = b"\r\n" if raw[first - 1] == 13 else b"\n"
    width = first + 1 - start - len(eol)
    if width < 4:
        return -1
    stop = dash(start)
    stop = raw.rfind(b"\n", start) + 1 if stop < 0 else stop + 1
    while stop - start > len(eol) and raw[stop - 2 * len(eol) : stop] == eol + eol:
        stop -= len(eol)  # blank lines before the boundary are not part of the body
    line = b"A" * width + eol
    n_full = (stop - start) // len(line)
    per_chunk = max(1, _CHUNK // len(line))
    pattern = line * min(per_chunk, n_full)
    for k in range(0, n_full, per_chunk):
        at, count = start + k * len(line), min(per_chunk, n_full - k)
        chunk = raw[at : at + count * len(line)].translate(_LINE_CLASS)
        if chunk != (pattern if count == len(pattern) // len(line) else line * count):
            return -1
    tail = raw[start + n_full * len(line) : stop].translate(_LINE_CLASS)
    if tail and (not tail.endswith(eol) or tail[: -len(eol)] != b"A" * (len(tail) - len(eol)) or len(tail) == len(eol)):
        return -1
    return stop


def _runs(raw: bytes, min_run: int) -> list[tuple[int, int]]:
    """(start, end) of each body-long run of base64 lines; `end` is before its last line ending."""
    # Bodies start after a blank line; only the style of the first one (the end of the
    # headers) is searched for: a search for the other would read the whole mail in vain.
    # A body after a blank line of the other style is simply not cut.
    head = min(len(raw), 1 << 16)
    lf, crlf = raw.find(b"\n\n", 0, head), raw.find(b"\n\r\n", 0, head)
    if lf < 0 and crlf < 0:
        return []
    blank_line = b"\n\n" if crlf < 0 or 0 <= lf < crlf else b"\n\r\n"
    next_blank, dash = _Next(raw, blank_line), _Next(raw, b"\n-")
    runs: list[tuple[int, int]] = []
    pos = 0
    while True:
        blank = next_blank(pos)
        if blank < 0:
            return runs
        start = blank + len(blank_line)
        stop = _even_run(raw, start, dash) - 1  # the "\n" ending the run
        if stop < 0:  # the general case: up to the next blank line or boundary, validated
            stop = _first(next_blank(start), dash(start))
            if stop < 0:
                stop = raw.rfind(b"\n", start)
                if stop < start:
                    return runs
            if not _only_base64_lines(raw, start, stop + 1):
                pos = max(stop, start)
                continue
        if stop + 1 - start >= min_run:
            end = stop - 1 if raw[stop - 1 : stop] == b"\r" else stop
            runs.append((start, end))
        pos = max(stop, start)


class Blobs:
    """The runs cut out of one raw mail, and how to get them back."""

    prefix = _PREFIX
    _marker = _MARKER
    _whole = _WHOLE

    def __init__(self, raw: bytes, runs: list[tuple[int, int]]) -> None:
        self.raw = raw
        self.runs = runs
        self._exact: dict[int, int] = {}  # id(part) -> run, for parts whose payload was one run
        self.all_restored = False

    def marker(self, i: int) -> str:
        return f"{self.prefix}{i:08d}"

    def _text(self, m: re.Match) -> str:
        start, end = self.runs[int(m.group(1))]
        return self.raw[start:end].decode("ascii")

    def _restore_str(self, value):
        if isinstance(value, str) and self.prefix in value:
            return self._marker.sub(self._text, value)
        return value

    def restore_tree(self, root: _EmailMessage) -> int:
        """Put the original text back into every payload, preamble and epilogue of `root`
        (iteratively: no recursion limit). Returns how many markers were replaced."""
        replaced = 0
        stack = [root]
        while stack:
            part = stack.pop()
            payload = _stored_payload(part)
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, _EmailMessage))
            elif isinstance(payload, str) and self.prefix in payload:
                m = self._whole.fullmatch(payload)
                if m:
                    self._exact[id(part)] = int(m.group(1))
                replaced += len(self._marker.findall(payload))
                setattr(part, _PAYLOAD, self._restore_str(payload))
            for attr in ("preamble", "epilogue"):
                value = getattr(part, attr, None)
                if isinstance(value, str) and self.prefix in value:
                    replaced += len(self._marker.findall(value))
                    setattr(part, attr, self._restore_str(value))
        return replaced

    def decode(self, part: _EmailMessage) -> bytes | None:
        """`part.get_payload(decode=True)` for a part whose whole body is one run, decoded
        from the raw bytes; None when that is not certain to give the same bytes (the caller
        then restores the text and lets the email package decode it)."""
        if part.is_multipart():
            return None
        index = self._exact.get(id(part))
        if index is None:
            payload = _stored_payload(part)
            m = self._whole.fullmatch(payload) if isinstance(payload, str) else None
            if not m:
                return None
            index = int(m.group(1))
        if str(part.get("content-transfer-encoding", "")).lower() != "base64":  # as get_payload reads it
            return None
        start, end = self.runs[index]
        raw = self.raw
        chars = end - start - raw.count(b"\n", start, end) - raw.count(b"\r", start, end)
        if chars % 4:
            return None  # email's decode_b pads it and notes a defect: leave that to it
        pad = raw.find(b"=", start, end)
        if pad >= 0 and (end - pad > 8 or raw[pad:end].translate(None, b"\r\n") not in (b"=", b"==")):
            return None  # padding in the middle: the lenient path of decode_b
        return binascii.a2b_base64(memoryview(raw)[start:end])

    def restore_part(self, part: _EmailMessage) -> None:
        """The original text back into `part` and everything below it."""
        if not self.all_restored:
            self.restore_tree(part)

    def restore_all(self, root: _EmailMessage) -> bool:
        """The original text back into the whole tree; False when some marker was not
        where it was expected (then the tree must not be used)."""
        self.all_restored = self.restore_tree(root) == len(self.runs)
        return self.all_restored


def cut(raw: bytes, min_run: int = MIN_RUN) -> tuple[bytes, Blobs | None]:
    """(skeleton, blobs): `raw` with every long base64 run replaced by a marker line, or
    (`raw`, None) when there is nothing worth cutting."""
    runs = _runs(raw, min_run)
    if not runs:
        return raw, None
    if _PREFIX_BYTES in raw:  # then simply parse the raw bytes
        return raw, None
    blobs = Blobs(raw, runs)
    pieces: list[bytes] = []
    at = 0
    for i, (start, end) in enumerate(runs):
        pieces.append(raw[at:start])
        pieces.append(blobs.marker(i).encode("ascii"))
        at = end
    pieces.append(raw[at:])
    return b"".join(pieces), blobs
