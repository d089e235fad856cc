"""A test double of Gmail's IMAP extensions, in front of the tests' private Dovecot.

No real Gmail server can run in the tests, so this TCP proxy (127.0.0.1, a free port) plays
the parts of Gmail the gateway uses, built from the wire format Google publishes in its
"IMAP Extensions" page (developers.google.com/gmail/imap/imap-extensions); no code is copied.
Every byte passes through both ways untouched, except:

- `X-GM-EXT-1` is added to every capability list the server announces: `* CAPABILITY ...`
  lines and `[CAPABILITY ...]` response codes (the greeting, the LOGIN OK).
- `UID STORE <set> +X-GM-LABELS[.SILENT] (<labels>)` (and `-X-GM-LABELS`) and
  `UID FETCH <set> (X-GM-LABELS)` are answered here, with labels kept in memory per (selected
  folder, UID): `* <seq> FETCH (X-GM-LABELS (<labels>) UID <uid>)` for each message that
  exists (none for a UID that does not: OK all the same), then `<tag> OK`. Labels are
  astrings (quoted when not an atom, e.g. with a space), non-ASCII in modified UTF-7. Which
  UIDs exist, and their sequence numbers, is asked of Dovecot on a side connection.

Not emulated: labels as folders (a label does not put the message into a folder of that
name, and a message's folder is not one of its labels), `[Gmail]/All Mail` and the system
labels (`\\Inbox`, `\\Important`, ...), X-GM-MSGID, X-GM-THRID, X-GM-RAW, labels fetched
together with other items (Dovecot answers BAD), STORE/FETCH of labels by sequence number or
with labels sent as literals (passed to Dovecot, which answers BAD), UIDVALIDITY (labels are
kept by folder name and UID) and more than one account.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

from imapclient import imap_utf7

CAP = b"X-GM-EXT-1"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")  # a line ends with a literal: n raw bytes follow
_CAP_LINE = re.compile(rb"(\* CAPABILITY [^\r\n]*)", re.I)
_CAP_CODE = re.compile(rb"(\S+ (?:OK|NO|BAD|PREAUTH|BYE) \[CAPABILITY [^\]]*)\]", re.I)
_STRING = rb'"(?:[^"\\\r\n]|\\.)*"'
_SELECT = re.compile(rb"(\S+) (?:SELECT|EXAMINE) (" + _STRING + rb"|[^\s(]+)", re.I)
_UNSELECT = re.compile(rb"\S+ (?:CLOSE|UNSELECT)\r\n", re.I)
_STORE = re.compile(rb"(\S+) UID STORE ([\d:,*]+) ([+-])X-GM-LABELS(\.SILENT)? \(([^\r\n{}]*)\)\r\n", re.I)
_FETCH = re.compile(rb"(\S+) UID FETCH ([\d:,*]+) \(?((?:UID|X-GM-LABELS)(?: (?:UID|X-GM-LABELS))*)\)?\r\n", re.I)
_TOKEN = re.compile(rb'\s*(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))')
_ATOM = re.compile(rb'\\?[^\x00-\x20\x7f(){%*"\\\]]+')


def _unquote(raw: bytes) -> str:
    if raw.startswith(b'"'):
        raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return imap_utf7.decode(raw)


def _astring(label: str) -> bytes:
    b = imap_utf7.encode(label)
    return b if _ATOM.fullmatch(b) else b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _with_gmail(line: bytes) -> bytes:
    if CAP in line.upper():
        return line
    line = _CAP_LINE.sub(lambda m: m.group(1) + b" " + CAP, line, count=1) if line[:2] == b"* " else line
    return _CAP_CODE.sub(lambda m: m.group(1) + b" " + CAP + b"]", line, count=1)


class GmailDouble:
    """`GmailDouble(dovecot)`: point the client at `.host`/`.port`; `labels(folder, uid)`."""

    host = "127.0.0.1"

    def __init__(self, dovecot: Any, user: str = "alice") -> None:
        self.dovecot, self.user = dovecot, user
        self._labels: dict[tuple[str, int], set[str]] = {}
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="gmail-double", daemon=True).start()

    def labels(self, folder: str, uid: int) -> set[str]:
        with self._lock:
            return set(self._labels.get((folder, uid), ()))

    def close(self) -> None:
        for s in [self._listener, *self._socks]:
            _shut(s)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((self.dovecot.host, self.dovecot.port), timeout=10)
                server.settimeout(None)
            except OSError:
                _shut(client)
                continue
            self._socks += [client, server]
            _Session(self, client, server)

    def existing(self, folder: str, uids: bytes) -> dict[int, int]:
        """UID → sequence number of the messages of `uids` in `folder`, asked of Dovecot now
        on a side connection of our own (a fresh view: every message there now)."""
        with self.dovecot.client(self.user) as c:
            c.select_folder(folder, readonly=True)
            return {uid: d[b"SEQ"] for uid, d in c.fetch(c.search(["UID", uids.decode()]), ["UID"]).items()}

    def answer(self, folder: str, uids: bytes, change: str | None, labels: set[str], silent: bool) -> bytes:
        out = []
        found = self.existing(folder, uids)
        with self._lock:
            for uid, seq in sorted(found.items()):
                have = self._labels.setdefault((folder, uid), set())
                if change == "+":
                    have |= labels
                elif change == "-":
                    have -= labels
                if not silent:
                    out.append(
                        b"* %d FETCH (X-GM-LABELS (%s) UID %d)\r\n" % (seq, b" ".join(_astring(x) for x in sorted(have)), uid)
                    )
        return b"".join(out)


class _Session:
    """One client connection and its own connection to Dovecot, a thread each way."""

    def __init__(self, double: GmailDouble, client: socket.socket, server: socket.socket) -> None:
        self.d, self.client, self.server = double, client, server
        self.write = threading.Lock()  # our answers and Dovecot's never interleave
        self.folder: str | None = None
        self.selecting: tuple[bytes, str] | None = None
        for pump in (self._from_server, self._from_client):
            threading.Thread(target=self._run, args=(pump,), daemon=True).start()

    def _run(self, pump: Callable[[], None]) -> None:
        try:
            pump()
        except OSError:
            pass
        finally:
            _shut(self.client)
            _shut(self.server)

    def _send(self, data: bytes) -> None:
        with self.write:
            self.client.sendall(data)

    def _from_server(self) -> None:
        rf = self.server.makefile("rb")
        while line := rf.readline():
            parts = [_with_gmail(line)]
            while m := _LITERAL.search(line):  # a whole response, literals untouched, then sent at once
                parts.append(rf.read(int(m.group(1))))
                line = rf.readline()
                parts.append(line)
            if self.selecting and parts[0].startswith(self.selecting[0] + b" "):
                self.folder = self.selecting[1] if parts[0].split(b" ", 2)[1].upper() == b"OK" else None
                self.selecting = None
            self._send(b"".join(parts))

    def _from_client(self) -> None:
        rf = self.client.makefile("rb")
        while line := rf.readline():
            if _LITERAL.search(line):  # a command with literals: passed through as it comes
                while m := _LITERAL.search(line):
                    self.server.sendall(line)
                    self.server.sendall(rf.read(int(m.group(1))))
                    line = rf.readline()
                self.server.sendall(line)
            elif not self._answered(line):
                self.server.sendall(line)

    def _answered(self, line: bytes) -> bool:
        """Answer a complete command line here if it is about labels; False: Dovecot's."""
        if m := _SELECT.match(line):
            self.selecting, self.folder = (m.group(1), _unquote(m.group(2))), None
        elif _UNSELECT.match(line):
            self.folder = None
        m = _STORE.match(line) or _FETCH.match(line)
        if m is None or (m.re is _FETCH and b"X-GM-LABELS" not in m.group(3).upper()):
            return False
        store, tag = m.re is _STORE, m.group(1)
        if self.folder is None:
            self._send(tag + b" BAD No folder selected\r\n")
            return True
        tokens = _TOKEN.findall(m.group(5)) if store else []
        labels = {_unquote(atom or b'"' + quoted + b'"') for quoted, atom in tokens}
        try:
            body = self.d.answer(
                self.folder, m.group(2), m.group(3).decode() if store else None, labels, store and bool(m.group(4))
            )
        except Exception as exc:
            self._send(tag + b" NO " + str(exc).encode(errors="replace")[:200] + b"\r\n")
            return True
        self._send(body + tag + b" OK Success\r\n")
        return True


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
