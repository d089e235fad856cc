"""Talking to an IMAP server: TLS / STARTTLS / plain, LOGIN or OAuth2, capabilities, folders.

Every connection has socket timeouts, so a dead server or a dropped network shows up as an
exception instead of a hang. Errors are split the way the rest of the gateway splits them:
`ImapAuthError` (the server said no to these credentials: fix the config, retrying soon will
not help), `ConfigError` (a setting that can never work), anything else is "couldn't talk".
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import shlex
import socket
import ssl
import subprocess
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from imapclient.imapclient import SocketTimeout

from gateway.errors import ConfigError, GatewayError
from gateway.mailboxes.imap.config import ImapConfig, ImapOAuth2
from gateway.mailboxes.imap.servers import server_for

log = logging.getLogger("gateway.imap")
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0  # a command that gets no answer for a minute: the connection is dead

# Network trouble, seen from imaplib / imapclient / the socket layer.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, socket.timeout, ssl.SSLError, IMAPClient.AbortError, EOFError)


class ImapAuthError(GatewayError):
    """The server refused the credentials (or the OAuth2 token could not be had)."""


class ImapFolderMissing(GatewayError):
    """A watched folder does not exist on the server (yet)."""


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def default_port(cfg: ImapConfig) -> int:
    return cfg.port or (993 if cfg.security == "tls" else 143)


def check_security(cfg: ImapConfig) -> None:
    if cfg.security == "none" and not cfg.allow_insecure and not is_loopback(cfg.host):
        raise ConfigError(
            f"sources: {cfg.name}: security: none sends the password in clear text; it is allowed "
            f"only to a loopback address ({cfg.host} is not) unless allow_insecure: true"
        )
    if not cfg.password and not cfg.oauth2:
        raise ConfigError(f"sources: {cfg.name}: needs password (or password_file) or oauth2")


# ---- OAuth2 tokens -------------------------------------------------------------------------


def oauth2_token(o: ImapOAuth2) -> str:
    """A bearer token: the output of `token_command`, or Microsoft identity client credentials."""
    if o.token_command:
        try:
            out = subprocess.run(
                o.token_command if _needs_shell(o.token_command) else shlex.split(o.token_command),
                shell=_needs_shell(o.token_command),
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ImapAuthError(f"oauth2 token_command failed: {exc}") from exc
        token = out.stdout.strip()
        if out.returncode != 0 or not token:
            raise ImapAuthError(f"oauth2 token_command exited {out.returncode}: {out.stderr.strip()[:200]}")
        return token
    if not (o.tenant_id and o.client_id and o.client_secret):
        raise ConfigError("oauth2: give token_command, or tenant_id, client_id and client_secret")
    import requests

    from gateway.mailboxes.ms_identity import AuthorityError, confidential_app

    try:
        app = confidential_app(o.client_id, o.client_secret, tenant_id=o.tenant_id, authority=o.authority, ca_file=o.ca_file)
        result = app.acquire_token_for_client(scopes=[o.scope])  # served from msal's cache until it expires
    except AuthorityError as exc:
        raise ImapAuthError(f"Microsoft identity: {exc}") from None
    except requests.exceptions.SSLError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # a config matter, like the server's own certificate
            hint = "" if o.ca_file else " (behind a TLS-inspecting proxy: give its CA as oauth2: ca_file)"
            raise ConfigError(f"Microsoft identity at {o.authority}: TLS certificate not trusted{hint}: {exc}") from None
        raise
    if "access_token" not in result:
        error = str(result.get("error"))
        description = str(result.get("error_description") or "").splitlines()[:1]
        text = f"{error}: {description[0][:300] if description else ''}"
        if error in ("temporarily_unavailable", "server_error"):  # Entra ID's own trouble: retry soon
            raise ConnectionError(f"Microsoft identity: {text}")
        raise ImapAuthError(f"Microsoft identity refused the app {o.client_id} a token: {text}")
    return str(result["access_token"])


def _needs_shell(cmd: str) -> bool:
    return any(ch in cmd for ch in "|&;<>$`")


# ---- connections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    capabilities: frozenset[str]

    @property
    def idle(self) -> bool:
        return "IDLE" in self.capabilities

    @property
    def move(self) -> bool:
        return "MOVE" in self.capabilities

    @property
    def uidplus(self) -> bool:
        return "UIDPLUS" in self.capabilities

    @property
    def gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    @property
    def special_use(self) -> bool:
        return "SPECIAL-USE" in self.capabilities or "XLIST" in self.capabilities


def tls_context(cfg: ImapConfig) -> ssl.SSLContext:
    """Certificate and host name checked always; against `ca_file` when given, else the system's CAs."""
    try:
        return ssl.create_default_context(cafile=cfg.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"sources: {cfg.name}: ca_file {cfg.ca_file}: {exc}") from exc


def connect(cfg: ImapConfig, read_timeout: float = READ_TIMEOUT) -> tuple[IMAPClient, ServerInfo]:
    """A logged-in connection. Raises ImapAuthError, ConfigError or a network error. At most
    the server's `max_logins` connections are being opened at once (servers.py)."""
    check_security(cfg)
    port = default_port(cfg)
    with server_for(cfg, port).logins:
        return _connect(cfg, port, read_timeout)


def login_name(cfg: ImapConfig) -> str:
    """Who logs in, as the server's log and our errors name it."""
    if cfg.master_user and cfg.master_login == "separator":
        return f"{cfg.username}{cfg.master_separator}{cfg.master_user}"
    if cfg.master_user:
        return f"{cfg.username} (as {cfg.master_user})"
    return cfg.username


def _connect(cfg: ImapConfig, port: int, read_timeout: float) -> tuple[IMAPClient, ServerInfo]:
    timeout = SocketTimeout(connect=CONNECT_TIMEOUT, read=read_timeout)
    client: IMAPClient | None = None
    try:
        client = IMAPClient(
            cfg.host,
            port,
            ssl=cfg.security == "tls",
            ssl_context=tls_context(cfg) if cfg.security == "tls" else None,
            timeout=timeout,
        )
        if cfg.security == "starttls":
            if b"STARTTLS" not in client.capabilities():
                raise ConfigError(f"sources: {cfg.name}: {cfg.host} does not offer STARTTLS")
            client.starttls(tls_context(cfg))
        try:
            if cfg.oauth2:
                token = oauth2_token(cfg.oauth2)
                if cfg.oauth2.mechanism == "OAUTHBEARER":
                    client.oauthbearer_login(cfg.username, token)
                else:
                    client.oauth2_login(cfg.username, token)
            elif cfg.master_user and cfg.master_login == "authzid":
                # SASL PLAIN: authenticate as the master, act as the mailbox's user (RFC 4616)
                client.plain_login(cfg.master_user, cfg.password or "", cfg.username)
            else:
                client.login(login_name(cfg), cfg.password or "")
        except LoginError as exc:
            if isinstance(exc.__context__, NETWORK_ERRORS):
                # imapclient turns any failure of LOGIN into LoginError, a socket EOF too: that is
                # a broken connection (retry soon), not a refusal of the credentials.
                raise ConnectionError(f"connection closed during login ({_text(exc.__context__)})") from exc
            raise ImapAuthError(f"login as {login_name(cfg)} at {cfg.host}:{port} refused: {_text(exc)}") from exc
        caps = frozenset(c.decode().upper() if isinstance(c, bytes) else str(c).upper() for c in client.capabilities())
        return client, ServerInfo(caps)
    except ssl.SSLCertVerificationError as exc:  # at connect (tls) or at STARTTLS
        close_quietly(client)
        raise ConfigError(_untrusted(cfg, port, exc)) from exc
    except BaseException:
        close_quietly(client)
        raise


def _untrusted(cfg: ImapConfig, port: int, exc: ssl.SSLCertVerificationError) -> str:
    """Not a network hiccup: retrying soon will not help, the certificate or the config must change."""
    hint = "" if cfg.ca_file else " (a certificate from an in-house CA: give its PEM file as ca_file)"
    return f"TLS certificate of {cfg.host}:{port} not trusted: {exc.verify_message or exc}{hint}"


def close_quietly(client: IMAPClient | None) -> None:
    if client is None:
        return
    with contextlib.suppress(Exception):
        client.shutdown()  # no LOGOUT round trip: the connection may be dead already


def logout_quietly(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:
        close_quietly(client)


def buffered(client: IMAPClient) -> bool:
    """Whether the server's next lines are already waiting in imaplib's read buffer, where a
    selector watching the socket cannot see them (an EXISTS sent together with the IDLE
    continuation). Never blocks: the socket is read without waiting, then its timeout restored."""
    sock = client.socket()
    sock.settimeout(0)
    try:
        return bool(client._imap.file.peek(1))
    except (OSError, ValueError):  # would block (TLS says so with an SSLError): nothing there
        return False
    finally:
        client._set_read_timeout()


def _text(exc: BaseException) -> str:
    s = str(exc)
    return s[2:-1] if s.startswith(("b'", 'b"')) else s


# ---- folders -------------------------------------------------------------------------------

SPECIAL = {"\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged"}


def server_folders(client: IMAPClient) -> dict[str, set[str]]:
    """Every folder (Unicode name; imapclient does modified UTF-7 on the wire) → its attributes."""
    out: dict[str, set[str]] = {}
    for flags, _delim, name in client.list_folders():
        out[name if isinstance(name, str) else name.decode()] = {f.decode() if isinstance(f, bytes) else str(f) for f in flags}
    return out


def resolve_folder(name: str, folders: dict[str, set[str]]) -> str | None:
    """The server's name for a configured folder: `\\Sent` (any special use) by attribute, so a
    localised "Gesendete Elemente" is found; otherwise the name itself (INBOX case-insensitively)."""
    if name.startswith("\\"):
        for fname, attrs in sorted(folders.items()):
            if any(a.lower() == name.lower() for a in attrs):
                return fname
        return None
    if name.upper() == "INBOX":
        return next((f for f in folders if f.upper() == "INBOX"), "INBOX")
    return name if name in folders else None
