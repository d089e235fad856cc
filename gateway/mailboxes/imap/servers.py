"""What one IMAP server (host and port) allows this process, whichever sources talk to it.

Two budgets, shared by every source and mailbox that names the server:
- logins at once (`max_logins`): after a server restart hundreds of connections come back
  through this gate a few at a time, each after its own jittered back-off, so the restart
  never becomes a login storm that the server's login processes refuse;
- connections kept open for IDLE (`max_connections`): a folder that finds the budget spent
  is polled instead, on a connection opened for each poll and closed after it.
The first source to name a server sets its limits (the config says where they come from).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gateway.mailboxes.imap.config import ImapConfig


@dataclass
class Server:
    host: str
    port: int
    max_connections: int
    max_logins: int
    logins: threading.BoundedSemaphore = field(init=False)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.logins = threading.BoundedSemaphore(self.max_logins)

    def take_connection(self) -> bool:
        """One more long-lived connection, if the budget has room."""
        with self._lock:
            if self.connections >= self.max_connections:
                return False
            self.connections += 1
            return True

    def give_connection(self) -> None:
        with self._lock:
            self.connections = max(0, self.connections - 1)


_SERVERS: dict[tuple[str, int], Server] = {}
_LOCK = threading.Lock()


def server_for(cfg: ImapConfig, port: int) -> Server:
    key = (cfg.host.lower(), port)
    with _LOCK:
        if key not in _SERVERS:
            _SERVERS[key] = Server(cfg.host, port, cfg.max_connections, cfg.max_logins)
        return _SERVERS[key]
