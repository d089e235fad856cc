"""SMTP intake fixtures: a gateway home whose only source is the BCC intake, a TLS certificate,
and the gateway running in this process (its aiosmtpd Controller on a free port)."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Home

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
        "name": "bcc", "type": "smtp", "listen": f"127.0.0.1:{port}", "max_size": "1MB", "hostname": "gw.test",
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


@pytest.fixture
def smtp_home(tmp_path: Path) -> Home:
    return make_smtp_home(tmp_path)


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, made with `cryptography`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


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
        assert wait_until(lambda: _listening(home.port), DEADLINE), "the SMTP listener did not come up"  # type: ignore[attr-defined]
        yield gw
    finally:
        stop.set()
        t.join(timeout=DEADLINE)
        gw.close()


def _listening(port: int) -> bool:
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
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", *args, "-c", str(home.config_path)],
                                cwd=home.root, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        try:
            up = wait_until_listening(home.port, proc)  # type: ignore[attr-defined]
            assert up, "the gateway did not come up:\n" + log_path.read_text(errors="replace")[-3000:]
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=DEADLINE)


def wait_until_listening(port: int, proc: Any) -> bool:
    from tests.waiting import wait_until

    return wait_until(lambda: proc.poll() is not None or _listening(port), DEADLINE) and proc.poll() is None
