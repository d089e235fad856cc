"""A storm of idle connections against a gateway process whose descriptor limit is low: the
intake caps all its connections below that limit (newcomers get 421), logs the storm at most
once a second without tracebacks, and the Maildir source and later SMTP sessions keep working."""

from __future__ import annotations

import re
import resource
import socket
import time

from tests.fixtures import FOLDERS, Home
from tests.mail import make_mail as raw_mail
from tests.mailboxes.smtp.fixtures import (
    DEADLINE,
    INTAKE,
    ME,
    client,
    free_port,
    make_mail,
    running,
    set_source,
    settled,
    smtp_source,
    spawned,
)
from tests.waiting import wait_until

NOFILE = 320  # the gateway idles at about 20 descriptors; the storm alone would need 400
STORM = 400


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _greeting(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def test_an_idle_connection_storm_gets_421_beyond_the_cap_and_starves_nothing(tmp_path):
    port = free_port()
    maildir = {
        "name": "local",
        "type": "maildir",
        "path": "var/mail",
        "layout": "fs",
        "owner": [ME],
        "crm_user": ME,
        "folders": FOLDERS,
    }
    home = Home(
        tmp_path, extra={"sources": [maildir, smtp_source(port, max_connections_per_ip=STORM * 2, rate_limit=None, timeout=600)]}
    )
    home.port = port  # type: ignore[attr-defined]
    log_path = tmp_path / "gateway.log"
    held: list[socket.socket] = []
    replies: list[bytes] = []
    with spawned(home, preexec_fn=_low_nofile):
        assert wait_until(lambda: "connections)" in log_path.read_text(), DEADLINE)  # logged just after listening
        (cap,) = map(int, re.findall(r"max (\d+) connections\)", log_path.read_text()))
        assert 0 < cap < NOFILE - 100  # derived from the lowered RLIMIT_NOFILE, with room to spare
        began = time.monotonic()
        try:
            for _ in range(STORM):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                reply = _greeting(sock)
                replies.append(reply)
                if reply.startswith(b"220"):
                    held.append(sock)  # idle: it says nothing more
                else:
                    sock.close()
            assert len(held) == cap
            assert all(r.startswith(b"421 4.3.2") for r in replies if not r.startswith(b"220"))
            assert len(replies) - len(held) == STORM - cap

            # during the storm: the Maildir source still gets its descriptors and processes mail
            home.drop("VLeads", raw_mail(sender="Nina New <nina@acme.example>", subject="during the storm"))
            assert wait_until(lambda: settled(home, 1), DEADLINE), home.states()
        finally:
            storm_seconds = time.monotonic() - began
            for sock in held:
                sock.close()
        # after the storm: a normal session is served again
        assert wait_until(lambda: _greeting_ok(port), DEADLINE)
        with client(home) as s:
            assert s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="zoe@park.example", subject="after")) == {}
        assert wait_until(lambda: settled(home, 2), DEADLINE), home.states()
    log = log_path.read_text(errors="replace")
    storm_lines = [line for line in log.splitlines() if "connection(s) with 421" in line]
    assert (
        storm_lines
        and sum(
            int(re.search(r"refused (\d+) connection", line).group(1))  # type: ignore[union-attr]
            for line in storm_lines
        )
        == STORM - cap
    )
    assert len(storm_lines) <= storm_seconds + 2  # at most one a second (plus the first and the last)
    assert "traceback" not in log.lower() and "Too many open files" not in log
    crm = home.dump()
    assert {a for lead in crm["leads"] for a in lead["emails"]} >= {"nina@acme.example", "zoe@park.example"}


def _greeting_ok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        return _greeting(sock).startswith(b"220")


def test_a_configured_max_connections_caps_the_listener_and_frees_up_again(smtp_home):
    set_source(smtp_home, max_connections=3, max_connections_per_ip=50)
    with running(smtp_home):
        assert wait_until(lambda: _greeting_ok(smtp_home.port), DEADLINE)  # the readiness probes have gone
        held = [socket.create_connection(("127.0.0.1", smtp_home.port), timeout=30) for _ in range(3)]
        try:
            assert [_greeting(s)[:3] for s in held] == [b"220"] * 3
            with socket.create_connection(("127.0.0.1", smtp_home.port), timeout=30) as extra:
                assert _greeting(extra).startswith(b"421 4.3.2 Too many connections")
            held.pop().close()
            assert wait_until(lambda: _greeting_ok(smtp_home.port), DEADLINE)  # a place is free again
        finally:
            for s in held:
                s.close()


def test_when_descriptors_run_out_anyway_the_intake_logs_it_once_a_second_without_tracebacks(smtp_home):
    """A limit far too low for the cap's reserve (48 descriptors): accept() does fail with
    EMFILE; the intake reports that in one line a second at most and keeps serving."""
    low = 48
    began = time.monotonic()
    with spawned(smtp_home, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, low))):
        socks = [socket.create_connection(("127.0.0.1", smtp_home.port), timeout=30) for _ in range(150)]
        try:
            replies = [_greeting(s)[:3] for s in socks]  # all connect first: accept() gets a burst
        finally:
            for s in socks:
                s.close()
        assert replies.count(b"220") >= 1 and set(replies) <= {b"220", b"421", b""}
        assert wait_until(lambda: _greeting_ok(smtp_home.port), DEADLINE)
        with client(smtp_home) as s:
            assert s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="zoe@park.example", subject="after")) == {}
    seconds = time.monotonic() - began
    log = (smtp_home.root / "gateway.log").read_text()
    failed = [line for line in log.splitlines() if "accept() out of system resource" in line]
    assert failed, "the test did not make accept() fail"
    assert len(failed) <= seconds + 2
    assert all("logger=gateway.smtp" in line and "traceback" not in line.lower() for line in failed)
    assert "Traceback" not in "\n".join(line for line in log.splitlines() if "logger=gateway.smtp" in line)
