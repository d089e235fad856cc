"""A TCP proxy between the gateway and the test Dovecot, to play a broken network.

Not a double of the server: every byte goes to and comes from the real Dovecot. The proxy
only misbehaves on purpose: `cut_logins` closes the connection when a client sends LOGIN
(what a dropped connection or a failing load balancer looks like during login), and
`delay_exists` holds a server's `* n EXISTS` during IDLE for that many seconds (what a
Dovecot out of inotify instances does: it announces new mail only at its next poll).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.mailboxes.imap.dovecot import Dovecot


class ImapProxy:
    host = "127.0.0.1"

    def __init__(self, server: Dovecot) -> None:
        self.server = server
        self.cut_logins = 0  # how many LOGINs still to cut
        self.delay_exists = 0.0
        self.logins = 0  # LOGIN commands seen, cut or passed
        self.cut = 0
        self._idling: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="imap-proxy", daemon=True).start()

    def idling(self) -> bool:
        """Some connection is in IDLE now."""
        with self._lock:
            return bool(self._idling)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            _close(s)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.server.host, self.server.port), timeout=30)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client), daemon=True).start()

    def _to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                words = data.split(None, 2)
                command = words[1].upper() if len(words) >= 2 else b""
                if command == b"LOGIN":
                    with self._lock:
                        self.logins += 1
                        cut = self.cut_logins > 0
                        if cut:
                            self.cut_logins -= 1
                            self.cut += 1
                    if cut:
                        break
                with self._lock:
                    if command == b"IDLE":
                        self._idling.add(client)
                    elif data.strip().upper() == b"DONE":
                        self._idling.discard(client)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._idling.discard(client)
            _close(client)
            _close(upstream)

    def _to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                with self._lock:
                    hold = self.delay_exists if client in self._idling and b" EXISTS" in data else 0.0
                if hold:
                    time.sleep(hold)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
