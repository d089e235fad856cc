"""IMAP over TLS and STARTTLS, and XOAUTH2 / OAUTHBEARER logins, against a real Dovecot.

The server's certificate comes from a CA the test makes (trustme), as an in-house CA would:
the gateway trusts it only through `ca_file`. OAuth2 tokens are checked by Dovecot's own
oauth2 passdb, which asks an RFC 7662 introspection endpoint (`Introspection` below, the one
test double here: it stands for the identity provider).

Mail reaches Dovecot by local delivery into the Maildir, so every IMAP login in Dovecot's log
is the gateway's own, and the log says how each one was made (`method=…`, `TLS`).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.mail import make_mail
from tests.mailboxes.imap.dovecot import Dovecot
from tests.mailboxes.imap.fixtures import wait_for

trustme = pytest.importorskip("trustme", reason="trustme makes the test CA (pip install '.[test]')")


def _logins(d: Dovecot) -> list[str]:
    return re.findall(r"imap-login: Info: Login: user=<alice>, method=(\S+?), .*", d.log())


def _login_lines(d: Dovecot) -> list[str]:
    return [line for line in d.log().splitlines() if "imap-login: Info: Login: user=<alice>" in line]


def _one_mail_through(home, d: Dovecot, subject: str, message_id: str) -> None:
    """Start the gateway, deliver one mail into VLeads, and see it done and in the CRM."""
    home.start()
    home.wait_idle("VLeads")
    d.deliver(
        "VLeads",
        make_mail(sender="Bob Ray <bob@x.org>", subject=subject, message_id=message_id),
        f"1700000000.{message_id.strip('<>').replace('@', '_')}.host",
    )
    wait_for(lambda: home.states() == {"done": 1}, what="the mail done")
    assert [e["subject"] for e in home.dump()["emails"]] == [subject]


# ---- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def ca() -> object:
    return trustme.CA()


@pytest.fixture
def tls_dovecot(ca) -> Iterator[Dovecot]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain = b"".join(p.bytes() for p in cert.cert_chain_pems)
    d = Dovecot({"alice": "secret"}, tls=(chain, cert.private_key_pem.bytes()))
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def ca_file(ca, tmp_path: Path) -> str:
    path = tmp_path / "in-house-ca.pem"
    path.write_bytes(ca.cert_pem.bytes())
    return str(path)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_with_an_in_house_ca(imap_home, tls_dovecot, ca_file, security):
    port = tls_dovecot.imaps_port if security == "tls" else tls_dovecot.port
    home = imap_home(
        server=tls_dovecot,
        folders=["VLeads"],
        source={"security": security, "port": port, "ca_file": ca_file, "host": "localhost"},
    )
    _one_mail_through(home, tls_dovecot, "Over TLS", "<tls@x.org>")

    lines = _login_lines(tls_dovecot)  # the gateway's logins only, so far: source and write-back
    assert len(lines) >= 2, lines
    assert all(", TLS," in line and "method=PLAIN" in line for line in lines), lines
    assert tls_dovecot.flags("VLeads")["<tls@x.org>"] >= {"CRM_sync", "Synced"}


def test_untrusted_certificate_is_a_clear_error_in_status_not_a_crash(imap_home, tls_dovecot):
    home = imap_home(
        server=tls_dovecot, folders=["VLeads"], source={"security": "tls", "port": tls_dovecot.imaps_port, "host": "localhost"}
    )
    home.start()
    wait_for(lambda: "not trusted" in home.source_status()["last_error"], what="the certificate error in status")
    st = home.status_json()["sources"][0]
    assert st["connected"] is False
    assert "TLS certificate of localhost" in st["last_error"] and "ca_file" in st["last_error"]
    assert _login_lines(tls_dovecot) == []  # the password never went to an untrusted server
    assert any(t.name == "source-mail" and t.is_alive() for t in threading.enumerate())


def test_wrong_host_name_for_the_certificate_is_refused(imap_home, tls_dovecot, ca, tmp_path):
    other = ca.issue_cert("imap.example.org")  # a certificate for another name, from the trusted CA
    d = Dovecot({"alice": "secret"}, tls=(b"".join(p.bytes() for p in other.cert_chain_pems), other.private_key_pem.bytes()))
    try:
        (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
        home = imap_home(
            server=d,
            folders=["VLeads"],
            source={"security": "tls", "port": d.imaps_port, "host": "localhost", "ca_file": str(tmp_path / "ca.pem")},
        )
        home.start()
        wait_for(lambda: "not trusted" in home.source_status()["last_error"], what="the host name error")
        assert "localhost" in home.source_status()["last_error"]
        assert _login_lines(d) == []
        home.stop()
    finally:
        d.close()


def test_unreadable_ca_file_is_a_config_error(imap_home, tls_dovecot, tmp_path):
    home = imap_home(
        server=tls_dovecot,
        folders=["VLeads"],
        source={"security": "tls", "port": tls_dovecot.imaps_port, "host": "localhost", "ca_file": str(tmp_path / "missing.pem")},
    )
    home.start()
    wait_for(lambda: "ca_file" in home.source_status()["last_error"], what="the ca_file error")
    assert "missing.pem" in home.source_status()["last_error"]


# ---- OAuth2 ----------------------------------------------------------------------------------


class Introspection:
    """Test double of an OAuth2 identity provider's token introspection endpoint (RFC 7662:
    POST `token=…` as a form, answer `{"active": true, "username": …}` or `{"active": false}`),
    which Dovecot's oauth2 passdb asks for every XOAUTH2/OAUTHBEARER login."""

    def __init__(self, tokens: dict[str, str], lookup: Callable[[str], str | None] | None = None) -> None:
        """`tokens`: token → user name; `lookup`: asked for a token that is not there."""
        self.tokens = tokens
        self.lookup = lookup
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                token = form.get("token", [""])[0]
                outer.seen.append(token)
                user = outer.tokens.get(token) or (outer.lookup(token) if outer.lookup else None)
                body = json.dumps({"active": True, "username": user} if user else {"active": False}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/introspect"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp() -> Iterator[Introspection]:
    i = Introspection({"tok-alice-1": "alice"})
    try:
        yield i
    finally:
        i.close()


@pytest.fixture
def oauth_dovecot(idp) -> Iterator[Dovecot]:
    d = Dovecot({"alice": "secret"}, oauth2_url=idp.url)
    try:
        yield d
    finally:
        d.close()


def _token_command(tmp_path: Path, token: str, exit_code: int = 0) -> str:
    """A token command as an admin would write one (here a script printing a fixed token)."""
    script = tmp_path / f"token-{token}.py"
    script.write_text(f"import sys\nprint({token!r})\nsys.exit({exit_code})\n")
    return f"{sys.executable} {script}"


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth2_login_with_a_token_from_a_command(imap_home, oauth_dovecot, idp, tmp_path, mechanism):
    home = imap_home(
        server=oauth_dovecot,
        folders=["VLeads"],
        password="",
        source={"password": None, "oauth2": {"token_command": _token_command(tmp_path, "tok-alice-1"), "mechanism": mechanism}},
    )
    _one_mail_through(home, oauth_dovecot, "By token", "<oauth@y.org>")
    methods = _logins(oauth_dovecot)
    assert len(methods) >= 2 and set(methods) == {mechanism}, methods  # every gateway login, none by password
    assert set(idp.seen) == {"tok-alice-1"}
    assert oauth_dovecot.flags("VLeads")["<oauth@y.org>"] >= {"CRM_sync", "Synced"}


def test_refused_token_is_a_clear_error_in_status(imap_home, oauth_dovecot, idp, tmp_path):
    home = imap_home(
        server=oauth_dovecot,
        folders=["VLeads"],
        password="",
        source={"password": None, "oauth2": {"token_command": _token_command(tmp_path, "tok-expired")}},
    )
    home.start()
    wait_for(lambda: "refused" in home.source_status()["last_error"], what="the refused login in status")
    st = home.source_status()
    assert st["connected"] is False and "login as alice" in st["last_error"]
    assert idp.seen and set(idp.seen) == {"tok-expired"}
    assert _logins(oauth_dovecot) == []


def test_failing_token_command_is_a_clear_error_in_status(imap_home, oauth_dovecot, idp, tmp_path):
    home = imap_home(
        server=oauth_dovecot,
        folders=["VLeads"],
        password="",
        source={"password": None, "oauth2": {"token_command": _token_command(tmp_path, "no-token", exit_code=3)}},
    )
    home.start()
    wait_for(lambda: "token_command exited 3" in home.source_status()["last_error"], what="the token command error")
    assert idp.seen == []  # nothing was sent to the server


# ---- OAuth2 from Microsoft identity (client credentials) -----------------------------------


@pytest.fixture
def entra(ca, tmp_path: Path) -> Iterator[object]:
    """The Entra ID token endpoint of the Graph double (tests/mailboxes/exchange/graph_double.py: the
    client credentials grant as Microsoft documents it), over HTTPS from the test CA."""
    from tests.mailboxes.exchange.graph_double import GraphDouble

    cert = ca.issue_cert("127.0.0.1")
    (tmp_path / "idp-cert.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    (tmp_path / "idp-key.pem").write_bytes(cert.private_key_pem.bytes())
    g = GraphDouble(str(tmp_path / "idp-cert.pem"), str(tmp_path / "idp-key.pem")).start()
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture
def m365_dovecot(entra) -> Iterator[tuple[Dovecot, Introspection]]:
    """Dovecot taking the tokens Entra ID issued to the app for alice's mailbox (as Exchange
    Online does once the app's service principal has FullAccess to it)."""
    i = Introspection({}, lookup=lambda token: "alice" if token in entra.tokens else None)
    d = Dovecot({"alice": "secret"}, oauth2_url=i.url)
    try:
        yield d, i
    finally:
        d.close()
        i.close()


def _m365(entra, ca_file: str, secret: str) -> dict[str, object]:
    return {
        "password": None,
        "oauth2": {
            "tenant_id": entra.tenant,
            "client_id": entra.client_id,
            "client_secret": secret,
            "authority": entra.base,
            "ca_file": ca_file,
        },
    }


def test_oauth2_token_from_microsoft_identity_client_credentials(imap_home, m365_dovecot, entra, ca_file):
    d, idp = m365_dovecot
    home = imap_home(server=d, folders=["VLeads", "VContacts"], password="", source=_m365(entra, ca_file, entra.secret))
    _one_mail_through(home, d, "Via Entra", "<m365@z.org>")
    methods = _logins(d)
    assert len(methods) >= 3 and set(methods) == {"XOAUTH2"}, methods  # two folders' loops, the write-back, …
    token_posts = [r for r in entra.requests if r[1] == "POST" and r[2] == f"/{entra.tenant}/oauth2/v2.0/token"]
    assert len(token_posts) == 1  # one token for every login: msal's cache until it expires
    assert idp.seen and set(idp.seen) <= entra.tokens


def test_refused_client_secret_is_a_clear_error_in_status(imap_home, m365_dovecot, entra, ca_file):
    d, _ = m365_dovecot
    home = imap_home(server=d, folders=["VLeads"], password="", source=_m365(entra, ca_file, "not-the-secret"))
    home.start()
    wait_for(lambda: "refused the app" in home.source_status()["last_error"], what="the token error in status")
    err = home.source_status()["last_error"]
    assert "invalid_client" in err and "AADSTS7000215" in err and entra.client_id in err
    assert _logins(d) == []


def test_untrusted_authority_certificate_is_a_clear_config_error(imap_home, m365_dovecot, entra):
    d, _ = m365_dovecot
    source = _m365(entra, "", entra.secret)
    source["oauth2"].pop("ca_file")  # type: ignore[union-attr]
    home = imap_home(server=d, folders=["VLeads"], password="", source=source)
    home.start()
    wait_for(lambda: "not trusted" in home.source_status()["last_error"], what="the authority's certificate error")
    err = home.source_status()["last_error"]
    assert f"Microsoft identity at {entra.base}" in err and "oauth2: ca_file" in err
    assert _logins(d) == []
