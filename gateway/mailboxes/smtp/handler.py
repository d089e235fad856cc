"""The aiosmtpd side of the BCC intake: a handler with hook methods and a guarded SMTP protocol.

The handler decides at RCPT (unknown intake address → 550), at DATA (the sender must be one of
the user's addresses, optionally with a DKIM/SPF pass) and answers 250 only after the
intake's `hand_over_now` returned, i.e. the raw bytes are fsynced in the spool and the ledger
row exists.
Any internal error answers `451 4.3.0` so the sending server keeps the mail and retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from gateway.mailboxes.base import SourceRef
from gateway.mailboxes.smtp.config import SmtpConfig, SmtpUser
from gateway.mailboxes.smtp.policy import Directory, RateLimiter, Throttled, Verifier, claimed, connection_cap, header_from

log = logging.getLogger("gateway.smtp")

INTERNAL = "451 4.3.0 Internal error: please try again later"
RATE = "450 4.7.1 Too many commands from your address: try again later"


class Counters:
    def __init__(self) -> None:
        self.accepted = 0
        self.refused = 0
        self.errors = 0
        self.last_error = ""
        self.last_accepted: str | None = None


class IntakeHandler:
    def __init__(
        self,
        config: SmtpConfig,
        directory: Directory,
        verifier: Verifier,
        limiter: RateLimiter | None,
        hand_over: Callable[[SourceRef, bytes], Any],
        executor: Executor | None,
        hostname: str,
    ) -> None:
        self.config = config
        self.directory = directory
        self.verifier = verifier
        self.limiter = limiter
        self.hand_over = hand_over
        self.executor = executor
        self.hostname = hostname
        self.counters = Counters()
        self.connections: dict[str, int] = {}  # per client IP
        self.open = 0  # all connections of this listener
        self.cap = connection_cap(config.max_connections)
        self.storm = Throttled(
            lambda n: log.warning(
                "smtp %s: refused %d connection(s) with 421: at the cap of %d open connections (max_connections)",
                config.name,
                n,
                self.cap,
            )
        )
        self.per_ip_storm = Throttled(
            lambda n: log.warning(
                "smtp %s: refused %d connection(s) with 421: too many from one address or over its rate limit", config.name, n
            )
        )

    # ---- hooks (aiosmtpd calls handle_<COMMAND>(server, session, envelope, …)) -----------

    async def handle_EHLO(self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.config.auth == "off":  # aiosmtpd would list an empty AUTH line after STARTTLS
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        return responses

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        if self.config.require_tls and session.ssl is None:
            return "530 5.7.0 Must issue a STARTTLS command first"
        if self.limiter and not self.limiter.take(_ip(session)):
            return RATE
        bad = address_problem(address, mail_options)
        if bad:
            self._refused(session, envelope, f"MAIL FROM {_printable(address)}: {bad[4:]}")
            return bad
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        ip = _ip(session)
        if self.limiter and self.limiter.empty(ip):
            return RATE  # slows down anyone guessing intake addresses
        bad = address_problem(address, envelope.mail_options)
        if bad:
            self._refused(session, envelope, f"RCPT {_mask(_printable(address))}: {bad[4:]}")
            return bad
        user = self.directory.user_for(address)
        if user is None:
            if self.limiter:
                self.limiter.take(ip)
            self._refused(session, envelope, f"unknown intake address {_mask(address)}")
            return "550 5.1.1 No such intake address"
        login = getattr(session, "auth_data", None)
        if isinstance(login, SmtpUser) and login.address != user.address:
            self._refused(session, envelope, f"{login.address} may not use another user's intake address")
            return "550 5.7.1 This intake address is not yours"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or b""
        users: list[SmtpUser] = []
        for rcpt in envelope.rcpt_tos:
            user = self.directory.user_for(rcpt)
            if user is not None and user not in users:
                users.append(user)
        froms = header_from(raw)
        for user in users:
            ident = claimed(user, envelope.mail_from or "", froms)
            if ident is None:
                self._refused(session, envelope, f"sender is not one of {user.address}'s addresses", raw)
                return "550 5.7.1 Sender not allowed: neither the envelope nor the header From is yours"
            if self.verifier.needed:
                loop = asyncio.get_running_loop()
                verdict = await loop.run_in_executor(
                    self.executor, self.verifier.check, raw, ident, _ip(session), session.host_name or ""
                )
                if not verdict.ok:
                    self._refused(session, envelope, verdict.reason, raw)
                    return f"{verdict.code} {verdict.reason}"
        stamped = self._received(session) + raw
        spool_id = f"{time.time_ns():x}-{uuid.uuid4().hex[:16]}"
        loop = asyncio.get_running_loop()
        try:
            for user in users:
                ref = SourceRef(self.config.name, user.address, self.config.folders[0], spool_id)
                await loop.run_in_executor(self.executor, self.hand_over, ref, stamped)
        except Exception as exc:
            self._error(session, exc)
            return INTERNAL
        self.counters.accepted += 1
        self.counters.last_accepted = datetime.now(UTC).isoformat()
        log.info(
            "smtp %s: accepted %s (%d bytes) from %s, MAIL FROM <%s>, RCPT %s, for %s",
            self.config.name,
            spool_id,
            len(raw),
            _ip(session),
            envelope.mail_from or "",
            ", ".join(_mask(r) for r in envelope.rcpt_tos),
            ", ".join(u.address for u in users),
        )
        return f"250 2.0.0 OK: queued as {spool_id}"

    async def handle_exception(self, error: Exception) -> str:
        # Async and answering 4xx: aiosmtpd would otherwise answer 500 and the mail be lost.
        self.counters.errors += 1
        self.counters.last_error = f"{type(error).__name__}: {error}"
        log.error("smtp %s: internal error: %s", self.config.name, self.counters.last_error, exc_info=error)
        return INTERNAL

    # ---- AUTH ---------------------------------------------------------------------------

    def authenticator(self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = self.directory.login(auth_data.login.decode("utf-8", "replace"), auth_data.password.decode("utf-8", "replace"))
            if user is not None:
                return AuthResult(success=True, auth_data=user)
        if self.limiter:
            self.limiter.take(_ip(session))
        log.warning("smtp %s: failed AUTH %s from %s", self.config.name, mechanism, _ip(session))
        return AuthResult(success=False, handled=False)

    # ---- helpers ------------------------------------------------------------------------

    def _received(self, session: Any) -> bytes:
        proto = "ESMTP" + ("S" if session.ssl is not None else "") + ("A" if session.authenticated else "")
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
        line = (
            f"Received: from {helo} ([{_ip(session)}])\r\n\tby {self.hostname} (crm-mail-gateway) with {proto};\r\n"
            f"\t{format_datetime(datetime.now(UTC))}\r\n"
        )
        return line.encode("utf-8", "replace")

    def _refused(self, session: Any, envelope: Any, reason: str, raw: bytes | None = None) -> None:
        """Log a refusal: who, what envelope, which header From and Message-ID — never the body."""
        self.counters.refused += 1
        extra = ""
        if raw is not None:
            extra = f"; header From {', '.join(header_from(raw)) or '(none)'}; {len(raw)} bytes"
        log.warning(
            "smtp %s: refused from %s, MAIL FROM <%s>, RCPT %s: %s%s",
            self.config.name,
            _ip(session),
            envelope.mail_from or "",
            ", ".join(_mask(r) for r in envelope.rcpt_tos) or "-",
            reason,
            extra,
        )

    def _error(self, session: Any, exc: Exception) -> None:
        self.counters.errors += 1
        self.counters.last_error = f"{type(exc).__name__}: {exc}"
        log.error(
            "smtp %s: could not spool a message from %s (answered 451): %s",
            self.config.name,
            _ip(session),
            self.counters.last_error,
            exc_info=exc,
        )


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP with a cap on all connections, per-IP limits, a rate-limit check and a
    lifetime cap; refusals are logged at most once a second."""

    def __init__(self, handler: IntakeHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.intake = handler
        self._ip = ""
        self._life: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None and self._original_transport is None
        super().connection_made(transport)
        if not first:
            return  # the same connection after STARTTLS
        peer = transport.get_extra_info("peername")
        self._ip = peer[0] if isinstance(peer, tuple) and peer else str(peer)
        intake = self.intake
        conns = intake.connections
        conns[self._ip] = conns.get(self._ip, 0) + 1
        intake.open += 1
        refusal = None
        if intake.open > intake.cap:  # below the descriptor limit: accept() never fails with EMFILE
            refusal = "421 4.3.2 Too many connections: try again later"
            intake.storm.note(self.loop)
        elif conns[self._ip] > intake.config.max_connections_per_ip:
            refusal = "421 4.7.0 Too many connections from your address"
            intake.per_ip_storm.note(self.loop)
        elif intake.limiter and intake.limiter.empty(self._ip):
            refusal = "421 4.7.0 Too many commands from your address: try again later"
            intake.per_ip_storm.note(self.loop)
        if refusal:
            assert self._handler_coroutine is not None
            self._handler_coroutine.cancel()  # it has not run yet: no 220 greeting goes out
            transport.write(refusal.encode() + b"\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        self._life = self.loop.call_later(self.intake.config.connection_timeout, self._too_long)

    def _too_long(self) -> None:
        log.info("smtp: connection from %s over its time limit", self._ip)
        if self.transport is not None:
            self.transport.write(b"421 4.4.2 Connection time limit exceeded\r\n")  # type: ignore[attr-defined]
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._life is not None:
            self._life.cancel()
            self._life = None
        if self._ip:
            conns = self.intake.connections
            conns[self._ip] = conns.get(self._ip, 1) - 1
            if conns[self._ip] <= 0:
                conns.pop(self._ip, None)
            self.intake.open -= 1
            self._ip = ""
        super().connection_lost(error)


def _ip(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return peer[0] if isinstance(peer, tuple) and peer else str(peer or "")


def address_problem(address: str, options: list[str]) -> str | None:
    """The reply refusing an envelope address, or None. aiosmtpd decodes command arguments as
    UTF-8 with surrogateescape, so bytes that are not UTF-8 show up as lone surrogates: never
    a valid address, SMTPUTF8 or not (RFC 6531). Other non-ASCII needs the SMTPUTF8 parameter."""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return "553 5.1.7 Address is not valid UTF-8"
    if not address.isascii() and "SMTPUTF8" not in (o.upper() for o in options):
        return "553 5.6.7 Non-ASCII address needs SMTPUTF8"
    return None


def _printable(text: str) -> str:
    """For the log: bad bytes as \\xNN, so a hostile address cannot break the log line."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _mask(address: str) -> str:
    """Intake addresses are secrets: logs show `crm+ab…@domain`, never the whole token."""
    local, at, domain = address.rpartition("@")
    if "+" in local:
        base, _, token = local.partition("+")
        local = f"{base}+{token[:2]}…"
    return f"{local}{at}{domain}" if at else address
