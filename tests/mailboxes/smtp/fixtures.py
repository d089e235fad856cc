"""Helpers of the SMTP intake tests: a gateway home whose only source is the BCC intake, the
gateway running in this process (its aiosmtpd Controller on a free port) or as its own
process, an SMTP client and mails with CRLF line ends. The pytest fixtures are in conftest.py."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gateway.crm.base import PartyData
from tests.fixtures import Home
from tests.mail import make_mail as _make_mail

TOKEN = "s3cretToken0123456789"
INTAKE = f"crm+{TOKEN}@example.com"
ME = "me@example.com"
DEADLINE = 60.0  # generous: the machine is shared; every wait polls a condition


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_source(port: int, **over: Any) -> dict[str, Any]:
    src: dict[str, Any] = {
        "name": "bcc",
        "type": "smtp",
        "listen": f"127.0.0.1:{port}",
        "max_size": "1MB",
        "hostname": "gw.test",
        "users": [{"address": ME, "token": TOKEN, "crm_user": ME, "allowed_from": ["m.e@example.com"]}],
        "rate_limit": {"per_minute": 6000, "burst": 1000},
    }
    src.update(over)
    return src


def make_smtp_home(root: Path, **over: Any) -> Home:
    port = free_port()
    home = Home(root, extra={"sources": [smtp_source(port, **over)]})
    home.port = port  # type: ignore[attr-defined]
    return home


def set_source(home: Home, **over: Any) -> None:
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["sources"][0].update(over)
    home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


@contextlib.contextmanager
def running(home: Home, **gateway_kw: Any) -> Iterator[Any]:
    """The whole gateway (`run`) in a thread; yields it once the SMTP port answers."""
    from tests.waiting import wait_until

    gw = home.gateway(**gateway_kw)
    stop = threading.Event()
    t = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    t.start()
    try:
        assert wait_until(lambda: listening(home.port), DEADLINE), "the SMTP listener did not come up"  # type: ignore[attr-defined]
        yield gw
    finally:
        stop.set()
        t.join(timeout=DEADLINE)
        gw.close()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(1024).startswith(b"220")
    except OSError:
        return False


def message_states(home: Home) -> dict[str, int]:
    return home.states()


def settled(home: Home, n: int) -> bool:
    """`n` messages reached a final state in the ledger."""
    states = home.states()
    final = sum(v for k, v in states.items() if k in ("done", "review", "skipped", "ignored", "quarantined"))
    return final >= n


@contextlib.contextmanager
def spawned(home: Home, *args: str, preexec_fn: Any = None) -> Iterator[Any]:
    """`crm-gateway run ARGS` as its own process, its stderr in `home.root/gateway.log`; yields
    the process once the SMTP port answers, and ends it with SIGTERM (then waits) afterwards."""
    import subprocess
    import sys

    log_path = home.root / "gateway.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", *args, "-c", str(home.config_path)],
            cwd=home.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
        try:
            up = wait_untillistening(home.port, proc)  # type: ignore[attr-defined]
            assert up, "the gateway did not come up:\n" + log_path.read_text(errors="replace")[-3000:]
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=DEADLINE)


def wait_untillistening(port: int, proc: Any) -> bool:
    from tests.waiting import wait_until

    return wait_until(lambda: proc.poll() is not None or listening(port), DEADLINE) and proc.poll() is None


def crlf(raw: bytes) -> bytes:
    """On the wire, lines end in CRLF (smtplib sends bytes as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_mail(**kw) -> bytes:
    return crlf(_make_mail(**kw))


def client(home) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", home.port, timeout=30)


def seed(home, kind: str, address: str, first: str = "Ann", last: str = "Lee") -> None:
    from gateway.crm.sql import SqlConnector

    crm = SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")
    try:
        crm.import_party(kind, PartyData(kind=kind, emails=(address,), first_name=first, last_name=last))
    finally:
        crm.close()


def spooled_files(home) -> list:
    return [p for p in (home.root / "var" / "spool").rglob("*.eml") if p.parent.name != "tmp"]


def emails_by_subject(crm: dict, subject: str) -> list[dict]:
    return [e for e in crm["emails"] if e["subject"] == subject]
