"""EWS plumbing for the `ews` source: exchangelib accounts, explicit timeouts, and back-off.

exchangelib is run fail-fast: every server answer comes back here, so throttling is waited
out exactly as the server asks (ErrorServerBusy's BackOffMilliseconds, a 503's Retry-After),
a dropped connection is retried a few times, and wrong credentials or missing rights end in
one clear sentence instead of an endless retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Build,
    Configuration,
    Credentials,
    OAuth2Credentials,
    Version,
)
from exchangelib import errors as xerr
from exchangelib.folders import Folder, FolderCollection, MsgFolderRoot
from exchangelib.protocol import FailFast, Protocol, _get_retry_after
from exchangelib.queryset import Q

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.ews.config import EwsConfig

log = logging.getLogger("gateway.ews")
R = TypeVar("R")
TRANSIENT = (
    xerr.ErrorInternalServerTransientError,
    xerr.ErrorTimeoutExpired,
    xerr.TransportError,
    xerr.ErrorTooManyObjectsOpened,
    ConnectionError,
    OSError,
)


class EwsError(Permanent):
    """Wrong credentials, missing rights, a missing folder: waiting will not fix it."""


class AskedBackOff(FailFast):
    """Fail fast, but keep the delay a 503 asked for (FailFast drops Retry-After)."""

    def raise_response_errors(self, response: Any) -> None:
        try:
            super().raise_response_errors(response)
        except (xerr.ErrorInternalServerTransientError, xerr.ErrorServerBusy) as exc:
            after = _get_retry_after(response)
            if after:
                raise xerr.ErrorServerBusy(str(exc.args[0] if exc.args else exc), back_off=after) from None
            raise


def _credentials(cfg: EwsConfig) -> Any:
    if cfg.auth == "oauth2":
        return OAuth2Credentials(client_id=cfg.client_id, client_secret=cfg.client_secret, tenant_id=cfg.tenant_id)
    return Credentials(cfg.username, cfg.password or "")


def configuration(cfg: EwsConfig) -> Configuration:
    auth = {"ntlm": NTLM, "basic": BASIC, "oauth2": OAUTH2}[cfg.auth]
    version = Version(build=Build(*[int(x) for x in cfg.build.split(".")])) if cfg.build else None
    return Configuration(
        service_endpoint=cfg.url,
        server=None if cfg.url else cfg.server,
        credentials=_credentials(cfg),
        auth_type=auth,
        version=version,
        retry_policy=AskedBackOff(),
        max_connections=1,
    )


def own_protocol(config: Configuration, timeout: float) -> Protocol:
    """A Protocol outside exchangelib's cache: its own session pool (a streaming call holds one)."""
    proto = object.__new__(Protocol)
    Protocol.__init__(proto, config=config)
    proto.TIMEOUT = timeout  # per instance: exchangelib's default is 120 s
    return proto


def probe_version(acct: Account) -> None:
    """exchangelib's version probe, keeping a throttling answer as what it is.

    `Version.guess` turns every error answer to its probe into a TransportError ("No valid
    version headers found"), ErrorServerBusy included, so the delay the server asked for
    would be lost and the probe retried on our own schedule. The busy answer is still the
    TransportError's context: raise that instead, with its BackOffMilliseconds."""
    try:
        acct.version  # noqa: B018
    except xerr.TransportError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, xerr.ErrorServerBusy):
            raise cause from None
        raise


class EwsSession:
    """One service account reaching several mailboxes; calls go through `call` for back-off."""

    def __init__(self, cfg: EwsConfig, stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.stop = stop or threading.Event()
        self.config = configuration(cfg)
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()
        self.throttled_until = 0.0
        self.throttle_count = 0
        self.last_throttle = ""  # what the server was busy with, and the delay it asked for

    @property
    def mailboxes(self) -> list[str]:
        """The static list: `mailboxes:`, or the login's own when no list or file is given."""
        own = [] if self.cfg.mailboxes_file else [self.cfg.username]
        return [m.lower() for m in (self.cfg.mailboxes or own)]

    def _make_account(self, mailbox: str, protocol: Protocol | None = None) -> Account:
        access = IMPERSONATION if self.cfg.access == "impersonation" else DELEGATE
        acct = Account(primary_smtp_address=mailbox, config=self.config, autodiscover=False, access_type=access)
        acct.protocol = protocol or acct.protocol
        acct.protocol.TIMEOUT = self.cfg.timeout
        if self.config.version is None:  # otherwise exchangelib guesses at first use
            probe_version(acct)
        return acct

    def account(self, mailbox: str) -> Account:
        with self._lock:
            if mailbox not in self._accounts:
                self._accounts[mailbox] = self.call(lambda: self._make_account(mailbox), f"connecting to {mailbox}")
            return self._accounts[mailbox]

    def streaming_account(self, mailbox: str) -> Account:
        return self._make_account(mailbox, own_protocol(self.config, self.cfg.timeout))

    # ---- calls with back-off ------------------------------------------------------------

    def call(self, fn: Callable[[], R], what: str, attempts: int = 6) -> R:
        delay = 0.5
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except xerr.ErrorServerBusy as exc:
                wait = exc.back_off if exc.back_off else delay
                self.throttle_count += 1
                self.throttled_until = time.time() + wait
                asked = "as asked" if exc.back_off else "(no delay asked)"
                self.last_throttle = f"server busy (ErrorServerBusy) while {what}; backed off {wait:.2f}s {asked}"
                log.info("ews: server busy (ErrorServerBusy) while %s; backing off %.2fs %s", what, wait, asked)
                if attempt == attempts:
                    raise Retryable(f"EWS busy while {what}", retry_after=wait) from None
                if self.stop.wait(wait):
                    raise Retryable(f"stopped while {what}") from None
            except xerr.UnauthorizedError:
                raise EwsError(
                    f"EWS at {self.cfg.url or self.cfg.server}: wrong credentials for {self.cfg.username!r} "
                    f"(auth {self.cfg.auth}); the server answered 401"
                ) from None
            except (
                xerr.ErrorAccessDenied,
                xerr.ErrorImpersonateUserDenied,
                xerr.ErrorNonExistentMailbox,
                xerr.ErrorMailboxStoreUnavailable,
                xerr.ErrorItemNotFound,
                xerr.ErrorFolderNotFound,
                xerr.ErrorInvalidSyncStateData,
                xerr.ErrorSubscriptionNotFound,
            ):
                raise
            except xerr.ErrorImpersonationFailed as exc:
                raise EwsError(f"impersonation failed while {what}: {exc}") from None
            except TRANSIENT as exc:
                if attempt == attempts:
                    raise Retryable(f"EWS unreachable while {what}: {exc}") from None
                log.info("ews: %s while %s; retrying in %.1fs", type(exc).__name__, what, delay)
                if self.stop.wait(delay):
                    raise Retryable(f"stopped while {what}") from None
                delay = min(delay * 2, 30)
        raise AssertionError("unreachable")

    def rights_error(self, exc: Exception, mailbox: str) -> EwsError:
        if isinstance(exc, xerr.ErrorImpersonateUserDenied):
            return EwsError(
                f"{self.cfg.username} may not impersonate {mailbox}: grant the ApplicationImpersonation "
                f"role (see docs/exchange.md) or use access: delegate"
            )
        if isinstance(exc, xerr.ErrorNonExistentMailbox):
            return EwsError(f"mailbox {mailbox} does not exist")
        return EwsError(
            f"{self.cfg.username} has no access to {mailbox} ({type(exc).__name__}): give it "
            f"{'impersonation' if self.cfg.access == 'impersonation' else 'full access (delegate)'} rights"
        )

    # ---- folders ------------------------------------------------------------------------

    def find_folder(self, mailbox: str, name: str, create: bool) -> Folder:
        """A watched folder by display name under the mailbox root (Top of Information Store)."""
        acct = self.account(mailbox)
        try:
            root = self.call(lambda: MsgFolderRoot.get_distinguished(root=acct.root), f"opening {mailbox}")
            found = self.call(
                lambda: [
                    f
                    for f in FolderCollection(account=acct, folders=[root]).find_folders(q=Q(name=name), depth="Shallow")
                    if isinstance(f, Folder)
                ],
                f"looking for {name} in {mailbox}",
            )
        except (xerr.ErrorAccessDenied, xerr.ErrorImpersonateUserDenied, xerr.ErrorNonExistentMailbox) as exc:
            raise self.rights_error(exc, mailbox) from None
        if found:
            return found[0]
        if not create:
            raise EwsError(f"folder {name!r} is missing in {mailbox} (set create_folders: true to create it)")
        folder = Folder(parent=root, name=name)
        self.call(folder.save, f"creating {name} in {mailbox}")
        log.info("ews: created folder %s in %s", name, mailbox)
        return folder
