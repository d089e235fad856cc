"""A real HTTP server on 127.0.0.1 (a free port, its own thread) that the CRM doubles build on,
with the misbehaviour the connector contract needs: answer the next requests with a status
(429 with Retry-After, 5xx), stall past the client's timeout, or reject the next write with
the CRM's own validation error. Every request is logged with the server's clock, so a test
can check *that* a client waited for Retry-After without timing anything itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class _Fault:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall: float = 0.0
    reject: str = ""


class HttpDouble:
    """Subclass and implement `handle(request) -> Reply` and `rejection(request, message)`."""

    def __init__(self) -> None:
        self.log: list[Request] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.RLock()
        self._released = threading.Event()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body leave in two writes: without this, delayed ACKs cost 40 ms a request
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(
                    self.command, parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                )
                reply = double._dispatch(req)
                if reply is None:  # stalled: the client has given up; close without answering
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> HttpDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- misbehaviour ---------------------------------------------------------------------

    def fail_next(self, status: int, *, headers: dict[str, str] | None = None, body: bytes = b"", times: int = 1) -> None:
        """Answer the next `times` requests with this status (and headers, e.g. Retry-After)."""
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(status=status, headers=dict(headers or {}), body=body))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next requests this long at most (until `release_stalls`), then drop the
        connection unanswered."""
        with self._lock:
            self._released.clear()
            for _ in range(times):
                self._faults.append(_Fault(stall=seconds))

    def release_stalls(self) -> None:
        """End the stalls now: the client has given up on them."""
        self._released.set()

    def reject_next_write(self, message: str) -> None:
        """Refuse the next write (create) as the CRM does when validation fails."""
        with self._lock:
            self._faults.append(_Fault(reject=message))

    def _dispatch(self, req: Request) -> Reply | None:
        with self._lock:
            self.log.append(req)
            fault = None
            if self._faults and not (self._faults[0].reject and not self.is_write(req)):
                fault = self._faults.popleft()
        if fault is None:
            with self._lock:
                return self.handle(req)
        if fault.stall:
            self._released.wait(fault.stall)
            return None
        if fault.reject:
            return self.rejection(req, fault.reject)
        return Reply(
            fault.status, fault.body or b'{"message": "simulated failure"}', {"Content-Type": "application/json", **fault.headers}
        )

    # -- to implement ---------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        raise NotImplementedError

    def is_write(self, req: Request) -> bool:
        return False

    def rejection(self, req: Request, message: str) -> Reply:
        raise NotImplementedError
