"""Who may use the SMTP intake: secret intake addresses, allowed senders, DKIM/SPF, rate and
connection limits.

Everything here is plain data and functions, so the aiosmtpd handler (handler.py) stays a thin
adapter. DNS work (DKIM keys, SPF records) blocks: the handler runs it in its executor.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.mailboxes.smtp.config import SmtpConfig, SmtpUser
from gateway.message import addresses, mime

log = logging.getLogger("gateway.smtp")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str = "250"  # the reply when not ok: "550 5.7.1 …"
    reason: str = ""


ACCEPT = Verdict(True)


class Directory:
    """Intake address → user, and each user's allowed senders."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._by_intake: dict[str, SmtpUser] = {}
        for user in config.users:
            for address in config.intake_addresses(user):
                k = addresses.key(address)
                other = self._by_intake.get(k)
                if other is not None and other.address != user.address:
                    raise ValueError(f"intake address of {user.address} is also {other.address}'s")
                self._by_intake[k] = user
        self._by_login = {addresses.key(u.address): u for u in config.users if u.password}

    def user_for(self, rcpt: str) -> SmtpUser | None:
        return self._by_intake.get(addresses.key(rcpt)) if rcpt and "@" in rcpt else None

    def login(self, username: str, password: str) -> SmtpUser | None:
        import hmac

        user = self._by_login.get(addresses.key(username))
        if user is None or user.password is None:
            return None
        return user if hmac.compare_digest(user.password.encode(), password.encode()) else None

    @staticmethod
    def allowed(user: SmtpUser, address: str) -> bool:
        return bool(address) and (
            addresses.key(address) == addresses.key(user.address) or addresses.matches_any(address, user.allowed_from)
        )


def header_from(raw: bytes) -> list[str]:
    """The From (else Sender) addresses of a raw message, from its header block only."""
    try:
        tree = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(mime.header_block(raw), headersonly=True)
        values = tree.get_all("From") or tree.get_all("Sender") or []
        return [a for _, a in mime.parse_addresses([str(v) for v in values])]
    except Exception:
        return []


@dataclass
class Identity:
    """What the sender claims: which of the user's addresses, in the envelope and the header."""

    envelope: str | None  # the MAIL FROM when it is one of the user's addresses
    header: list[str] = field(default_factory=list)  # header From addresses that are the user's


def claimed(user: SmtpUser, mail_from: str, froms: list[str]) -> Identity | None:
    env = mail_from if Directory.allowed(user, mail_from) else None
    hdr = [a for a in froms if Directory.allowed(user, a)]
    return Identity(env, hdr) if env or hdr else None


def _aligned(address: str, domain: str) -> bool:
    return bool(domain) and addresses.in_domain(address, domain.strip().rstrip(".").lower())


class Verifier:
    """`require_pass`: DKIM (aligned with an allowed header From) or SPF (for an allowed
    envelope sender); from `Authentication-Results` of a trusted authserv-id, else DNS."""

    def __init__(self, config: SmtpConfig, dkim_dnsfunc: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.require = tuple(config.require_pass)
        self.dkim_dnsfunc = dkim_dnsfunc
        if "spf" in self.require and not config.trusted_authserv_id:
            try:
                import spf  # noqa: F401  (pyspf)
            except ImportError as exc:
                raise ValueError("require_pass: spf needs the pyspf package (or set trusted_authserv_id)") from exc

    @property
    def needed(self) -> bool:
        return bool(self.require)

    def check(self, raw: bytes, ident: Identity, ip: str, helo: str) -> Verdict:
        if not self.require:
            return ACCEPT
        if self.config.trusted_authserv_id:
            dkim_domains, spf_domains = self._from_results(raw)
        else:
            dkim_domains = self._dkim(raw) if "dkim" in self.require and ident.header else []
            spf_domains = self._spf(ip, ident.envelope, helo) if "spf" in self.require and ident.envelope else []
        if "dkim" in self.require and any(_aligned(a, d) for a in ident.header for d in dkim_domains):
            return ACCEPT
        if "spf" in self.require and ident.envelope and any(_aligned(ident.envelope, d) for d in spf_domains):
            return ACCEPT
        wanted = " or ".join(r.upper() for r in self.require)
        return Verdict(False, "550 5.7.1", f"no {wanted} pass for the sender's domain")

    def _from_results(self, raw: bytes) -> tuple[list[str], list[str]]:
        import authres

        dkim: list[str] = []
        spf: list[str] = []
        try:
            tree = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(mime.header_block(raw), headersonly=True)
            values = tree.get_all("Authentication-Results") or []
        except Exception:
            return dkim, spf
        want = (self.config.trusted_authserv_id or "").lower()
        for value in values:
            try:
                parsed = authres.AuthenticationResultsHeader.parse_value(mime.unfold(str(value)))
            except Exception:
                continue  # unparseable: not trusted
            if (parsed.authserv_id or "").lower() != want:
                continue  # added by someone else: anyone can write this header
            for r in parsed.results:
                if r.result != "pass":
                    continue
                if r.method == "dkim":
                    d = getattr(r, "header_d", None) or (getattr(r, "header_i", "") or "").rpartition("@")[2]
                    if d:
                        dkim.append(d)
                elif r.method == "spf":
                    mf = getattr(r, "smtp_mailfrom", None) or ""
                    if mf:
                        spf.append(mf.rpartition("@")[2])
        return dkim, spf

    def _dkim(self, raw: bytes) -> list[str]:
        import dkim

        n = sum(1 for line in mime.header_block(raw).split(b"\n") if line.lower().startswith(b"dkim-signature:"))
        passed: list[str] = []
        timeout = int(max(1, self.config.dns_timeout))
        for idx in range(n):
            try:
                d = dkim.DKIM(raw, timeout=timeout)
                kwargs = {"dnsfunc": self.dkim_dnsfunc} if self.dkim_dnsfunc else {}
                if d.verify(idx=idx, **kwargs) and d.domain:
                    passed.append(d.domain.decode("ascii", "replace"))
            except Exception as exc:  # DNS timeout, bad signature syntax: this signature does not pass
                log.info("dkim signature %d: %s", idx, exc)
        return passed

    def _spf(self, ip: str, mail_from: str | None, helo: str) -> list[str]:
        import spf  # pyspf

        if not mail_from:
            return []
        try:
            result, _explanation = spf.check2(i=ip, s=mail_from, h=helo or "unknown", timeout=self.config.dns_timeout)
        except Exception as exc:
            log.info("spf %s from %s: %s", mail_from, ip, exc)
            return []
        return [mail_from.rpartition("@")[2]] if result == "pass" else []


class RateLimiter:
    """A token bucket per client IP; thread-safe (the bench and tests call it from threads)."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, ip: str, n: float = 1.0) -> bool:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(ip, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            ok = tokens >= n
            self._buckets[ip] = (tokens - n if ok else tokens, now)
            if len(self._buckets) > 10_000:  # forget full buckets: they are the default anyway
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
            return ok

    def empty(self, ip: str) -> bool:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(ip, (self.burst, now))
            return min(self.burst, tokens + (now - at) * self.rate) < 1.0


class Throttled:
    """A log line for an event that can come in storms: at most one a second; what happens in
    between is counted into the next line (flushed by the event loop), never dropped silently."""

    def __init__(self, emit: Callable[[int], None], every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.emit = emit
        self.every = every
        self.clock = clock
        self.pending = 0
        self.last = float("-inf")
        self.scheduled = False

    def note(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count one event; call on `loop`'s thread."""
        self.pending += 1
        wait = self.last + self.every - self.clock()
        if wait <= 0:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if self.pending:
            n, self.pending = self.pending, 0
            self.last = self.clock()
            self.emit(n)


def connection_cap(configured: int | None, reserve: int = 256) -> int:
    """Connections one intake may hold: below the descriptor limit, leaving `reserve` (at most
    half the limit) for the rest of the gateway (spool, ledger, other sources, worker pipes)
    and half of what is left for accept() bursts, so a storm cannot take every descriptor."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        soft = -1  # no such limit here (not Unix)
    derived = 10_000 if soft < 0 else max(1, (soft - min(reserve, soft // 2)) // 2)  # RLIM_INFINITY is -1
    return min(configured, derived) if configured else derived
