"""SMTP BCC intake: users BCC or forward mail to a secret address; it lands on CRM records.

An aiosmtpd Controller runs in its own thread and only spools: `250` goes out once the raw
bytes are fsynced in the spool and the ledger has the location (`IntakePort.hand_over_now`); the pipeline
workers do the rest. A copy is (source, the user's address, "BCC", spool id), so the mailbox
is the user and the rules in `bcc.yaml` see their mail as outbound.

There is no mailbox to tag: tags and outcomes stay in the ledger (`status`, `explain`).
`run --once` starts no listener (`scan_once` returns 0); what a crash left in the spool is
picked up from the ledger by `recover()` on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller

from gateway.errors import ConfigError
from gateway.mailboxes.base import Found, IntakePort, LedgerOnly, SourceEnv
from gateway.mailboxes.smtp.config import SmtpConfig
from gateway.mailboxes.smtp.handler import GuardedSMTP, IntakeHandler
from gateway.mailboxes.smtp.policy import Directory, RateLimiter, Throttled, Verifier

log = logging.getLogger("gateway.smtp")
BACKLOG = 32


def parse_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:2525`, `[::1]:2525`, `:2525` (all addresses) → (host, port)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"smtp listen {listen!r}: write host:port, e.g. 127.0.0.1:2525")
    return host.strip("[]"), int(port)


def tls_context(config: SmtpConfig, resolve: Callable[[str], Any]) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(resolve(config.tls_cert)), str(resolve(config.tls_key)) if config.tls_key else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"smtp source {config.name}: cannot load tls_cert/tls_key: {exc}") from None
    return ctx


class _Controller(Controller):
    def factory(self) -> GuardedSMTP:
        return GuardedSMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        # asyncio accepts up to `backlog` sockets in one go before any is refused and closed:
        # a small backlog keeps that burst well inside the descriptors the cap leaves free.
        return self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context, backlog=BACKLOG
        )


class SmtpIntake:
    type = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        intake: IntakePort,
        resolve: Callable[[str], Any] = lambda p: p,
        dkim_dnsfunc: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.host, self.port = parse_listen(config.listen)
        self.hostname = config.hostname or socket.getfqdn()
        try:
            self.directory = Directory(config)
            self.verifier = Verifier(config, dkim_dnsfunc)
        except ValueError as exc:
            raise ConfigError(f"smtp source {config.name}: {exc}") from None
        self.tls = tls_context(config, resolve)
        limiter = RateLimiter(config.rate_limit.per_minute, config.rate_limit.burst) if config.rate_limit else None
        # (ref, raw) → location id; never waits for queue space, so the client is answered at once
        self.handler = IntakeHandler(
            config,
            self.directory,
            self.verifier,
            limiter,
            lambda ref, raw: intake.hand_over_now(Found(ref, raw)),
            None,
            self.hostname,
        )
        self.controller: _Controller | None = None
        self.listening = False
        self._loop_error_seen: dict[str, Any] = {}
        self.loop_errors = Throttled(self._log_loop_error)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        c = self.config
        # Spooling blocks (fsync, the ledger): it runs in these threads, never on the event loop.
        self.handler.executor = ThreadPoolExecutor(
            max_workers=16, thread_name_prefix=f"smtp-{c.name}"
        )  # concurrent sessions share a group commit
        kwargs: dict[str, Any] = dict(
            server_hostname=self.hostname,
            data_size_limit=c.max_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=c.timeout,
            tls_context=self.tls,
            require_starttls=c.require_tls,
            auth_required=c.auth == "required",
            auth_require_tls=True,
        )
        if c.auth != "off":
            kwargs["authenticator"] = self.handler.authenticator
        else:
            kwargs["auth_exclude_mechanism"] = ["LOGIN", "PLAIN"]
        # hostname "" binds every address (`:2525`); aiosmtpd would take None for localhost
        self.controller = _Controller(self.handler, hostname=self.host, port=self.port, ready_timeout=10.0, **kwargs)
        self.controller.loop.set_exception_handler(self._loop_error)
        self.controller.start()
        self.listening = True
        if c.max_connections and c.max_connections > self.handler.cap:
            log.warning(
                "smtp %s: max_connections %d is above what the descriptor limit allows; using %d",
                self.name,
                c.max_connections,
                self.handler.cap,
            )
        log.info(
            "smtp %s: listening on %s (TLS %s, AUTH %s, max %d bytes, max %d connections)",
            self.name,
            c.listen,
            "on" if self.tls else "off",
            c.auth,
            c.max_size,
            self.handler.cap,
        )

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """What asyncio reports from the listener (e.g. accept() failing with EMFILE, retried
        every second): one line a second at most, a traceback only for what is not an OSError."""
        self._loop_error_seen = context
        self.loop_errors.note(loop)

    def _log_loop_error(self, n: int) -> None:
        exc = self._loop_error_seen.get("exception")
        log.error(
            "smtp %s: %s%s (%d× in the last second)",
            self.name,
            self._loop_error_seen.get("message", "error"),
            f": {type(exc).__name__}: {exc}" if exc else "",
            n,
            exc_info=None if exc is None or isinstance(exc, OSError) else exc,
        )

    def close(self) -> None:
        if self.controller is not None:
            try:
                self.controller.stop()
            finally:
                self.controller = None
                self.listening = False
                for counted in (self.handler.storm, self.handler.per_ip_storm, self.loop_errors):
                    counted.flush()  # the loop has stopped: what a storm's last second counted
        if self.handler.executor is not None:
            self.handler.executor.shutdown(wait=True)
            self.handler.executor = None

    # ---- the Source protocol --------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.close()

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
        return 0  # nothing to scan: mail arrives only while `run` listens

    def status(self) -> dict[str, Any]:
        c, n = self.config, self.handler.counters
        return {
            "type": self.type,
            "connected": self.listening,
            "mode": "push",
            "listen": c.listen,
            "tls": self.tls is not None,
            "auth": c.auth,
            "require_pass": list(c.require_pass),
            "users": len(c.users),
            "accepted": n.accepted,
            "refused": n.refused,
            "errors": n.errors,
            "last_sync": n.last_accepted,
            "last_error": n.last_error,
            "folders": {f: {} for f in c.folders[:1]},
        }


def make(config: SmtpConfig, env: SourceEnv) -> tuple[SmtpIntake, LedgerOnly]:
    return SmtpIntake(config, env.intake, env.resolve), LedgerOnly()
