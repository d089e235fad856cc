"""What the intake never lets out or in: the secret token in the log (at DEBUG, with a real
gateway process, smtplib and swaks), a default or short token beyond loopback (`check`/`run`),
and envelope addresses that are not valid UTF-8 (a raw socket)."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from tests.mailboxes.smtp.fixtures import (
    DEADLINE,
    INTAKE,
    ME,
    TOKEN,
    client,
    make_mail,
    make_smtp_home,
    running,
    set_source,
    settled,
    spawned,
)
from tests.waiting import wait_until


def test_a_debug_log_never_shows_the_token_but_keeps_the_gateways_masked_session_lines(smtp_home, tmp_path):
    mail = tmp_path / "mail.eml"
    mail.write_bytes(make_mail(sender=f"Me <{ME}>", to="Zoe Park <zoe@park.example>", subject="via swaks"))
    with spawned(smtp_home, "--log-level", "debug"):
        with client(smtp_home) as s:
            assert s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="ann@acme.example", subject="via smtplib")) == {}
            s.ehlo()
            s.mail(ME)
            assert s.rcpt(f"crm+{TOKEN[:-1]}X@example.com")[0] == 550  # a near miss is a secret too
        sent = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{smtp_home.port}", "--from", ME, "--to", INTAKE, "--data", str(mail)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "250 2.0.0 OK: queued as" in sent.stdout, sent.stdout + sent.stderr
        # swaks' own mail has `To: crm+TOKEN@…` in its header: the pipeline sees the token too
        plain = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{smtp_home.port}", "--from", ME, "--to", INTAKE],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "250 2.0.0 OK: queued as" in plain.stdout, plain.stdout + plain.stderr
        assert wait_until(lambda: settled(smtp_home, 3), DEADLINE)
    log = (smtp_home.root / "gateway.log").read_text(errors="replace")
    assert "level=debug" in log  # the log really is at DEBUG
    assert TOKEN.lower() not in log.lower() and TOKEN[:-1].lower() not in log.lower()
    accepted = [line for line in log.splitlines() if "smtp bcc: accepted" in line]
    assert len(accepted) == 3 and all("RCPT crm+s3…@example.com" in line for line in accepted)
    assert any("refused from 127.0.0.1" in line and "crm+s3…@example.com" in line for line in log.splitlines())
    assert "logger=mail.log" not in log  # aiosmtpd's own per-command chatter (and its start-up probe) is gone


@pytest.mark.parametrize(
    "token, why",
    [
        ("local-dev-token-change-me", "known default"),
        ("MySecret-ChangeMe-2026-x", "known default"),
        ("abcdefgh12345678", "shorter than 20 characters"),
    ],
)
def test_a_default_or_short_token_is_refused_beyond_loopback_only(tmp_path, token, why):
    home = make_smtp_home(tmp_path)
    set_source(home, users=[{"address": ME, "token": token}])
    assert home.cli("check").returncode == 0  # loopback: the quick start keeps working

    set_source(home, listen="0.0.0.0:2525")
    for command in (("check",), ("run", "--once")):
        got = home.cli(*command)
        out = got.stdout + got.stderr
        assert got.returncode != 0, out
        where = re.search(r"config\.yaml:(\d+):(\d+): sources\.0: users: me@example\.com: the token is (.*)", out)
        assert where, out
        assert why in where.group(3) and "0.0.0.0:2525" in where.group(3)
        assert token not in out  # the message does not repeat the secret

    set_source(home, users=[{"address": ME, "token": TOKEN}], listen=":2525")
    assert home.cli("check").returncode == 0, home.cli("check").stderr


def _reply(sock: socket.socket) -> bytes:
    """One whole SMTP reply (all its lines), read without a client library."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and any(len(line) >= 4 and line[3:4] == b" " for line in lines[:-1]):
            return data


def _say(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line + b"\r\n")
    return _reply(sock)


def test_mail_from_that_is_not_utf8_is_refused_with_553(smtp_home):
    with running(smtp_home), socket.create_connection(("127.0.0.1", smtp_home.port), timeout=30) as sock:
        assert _reply(sock).startswith(b"220")
        assert _say(sock, b"EHLO client.test").startswith(b"250")
        assert _say(sock, b"MAIL FROM:<m\xff\xfee@example.com>").startswith(b"553 5.1.7")
        assert _say(sock, b"MAIL FROM:<m\xc3@example.com> SMTPUTF8").startswith(b"553 5.1.7")  # never valid
        assert _say(sock, "MAIL FROM:<mé@example.com>".encode()).startswith(b"553 5.6.7")  # not declared
        assert _say(sock, "MAIL FROM:<mé@example.com> SMTPUTF8".encode()).startswith(b"250")  # RFC 6531
        assert _say(sock, b"RCPT TO:<crm+\xff" + TOKEN.encode() + b"@example.com>").startswith(b"553 5.1.7")
        assert _say(sock, b"RSET").startswith(b"250")
        assert _say(sock, f"MAIL FROM:<{ME}>".encode()).startswith(b"250")
        assert _say(sock, f"RCPT TO:<{INTAKE}>".encode()).startswith(b"250")
        assert _say(sock, b"QUIT").startswith(b"221")
    assert smtp_home.states() == {}


def _own_address() -> str | None:
    """This machine's non-loopback IPv4 address, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_listen_without_a_host_binds_every_address(smtp_home):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    set_source(smtp_home, listen=f":{smtp_home.port}")
    with running(smtp_home), socket.create_connection((address, smtp_home.port), timeout=30) as sock:
        assert _reply(sock).startswith(b"220")
