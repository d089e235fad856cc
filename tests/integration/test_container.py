"""The container as shipped: its config, its HEALTHCHECK, and the Dockerfile's and compose
file's references. No container engine runs here, so the image itself is not built: the
config is run the way the image runs it (environment in, listening on every interface)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.fixtures import REPO
from tests.mail import make_mail
from tests.waiting import wait_for

CONFIG = REPO / "deploy" / "config.docker.yaml"
HEALTHCHECK = REPO / "deploy" / "healthcheck.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _container_home(root: Path) -> Path:
    """/app as the image lays it out: config.yaml, rules/, var/ beside them."""
    shutil.copy(CONFIG, root / "config.yaml")
    shutil.copytree(REPO / "rules", root / "rules")
    (root / "var").mkdir()
    return root / "config.yaml"


def _env(root: Path, **over: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BCC_TOKEN", "SMTP_LISTEN", "WEB_LISTEN", "MAILDIR")}
    env.update(MAILDIR=str(root / "mail"), **over)
    return env


def _cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "-c", str(config)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_container_config_checks_with_a_token_and_refuses_to_start_without_one(tmp_path):
    config = _container_home(tmp_path)
    ok = _cli(config, _env(tmp_path, BCC_TOKEN=secrets.token_urlsafe(24)), "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = _cli(config, _env(tmp_path), "check")
    assert missing.returncode == 1
    assert "BCC_TOKEN is not set" in missing.stdout + missing.stderr


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets process `pid` listens on, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    out = set()
    with open(f"/proc/{pid}/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                hex_ip, hex_port = f[1].split(":")
                ip = socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1])
                out.add((ip, int(hex_port, 16)))
    return out


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, text=True, timeout=60)


def _healthz(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
        return r.read() == b"ok"


def _done(home_root: Path) -> int:
    from gateway.ledger import Ledger

    led = Ledger(f"sqlite:///{home_root / 'var' / 'gateway.db'}")
    try:
        return sum(states.get("done", 0) for states in led.counts().values())
    finally:
        led.close()


@pytest.mark.slow
def test_the_container_config_listens_on_every_interface_and_the_healthcheck_sees_it(tmp_path):
    config = _container_home(tmp_path)
    token = secrets.token_urlsafe(24)
    smtp_port, web_port = _free_port(), _free_port()
    env = _env(tmp_path, BCC_TOKEN=token, SMTP_LISTEN=f"0.0.0.0:{smtp_port}", WEB_LISTEN=f"0.0.0.0:{web_port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: _healthz(web_port), 90), "the status page did not answer"
        assert wait_for(lambda: ("0.0.0.0", smtp_port) in _listening(proc.pid), 60)
        listening = _listening(proc.pid)
        assert {("0.0.0.0", smtp_port), ("0.0.0.0", web_port)} <= listening, listening
        health = _healthcheck(env)
        assert health.returncode == 0, health.stderr

        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as s:  # the BCC intake answers on it
            refused = s.sendmail(
                "me@example.com",
                [f"crm+{token}@example.com"],
                make_mail(sender="Me <me@example.com>", to="Zoe Client <zoe@client.example>"),
            )
        assert refused == {}
        assert wait_for(lambda: _done(tmp_path) >= 1, 60), "the BCC'd mail was not processed"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    down = _healthcheck(env)
    assert down.returncode == 1 and "unhealthy" in down.stderr


def test_the_dockerfile_and_compose_file_refer_to_what_exists():
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["tini", "--", "crm-gateway"\]', dockerfile, re.M)
    assert "COPY deploy/config.docker.yaml ./config.yaml" in dockerfile
    assert "HEALTHCHECK" in dockerfile and '"/app/healthcheck.py"' in dockerfile
    assert "COPY deploy/healthcheck.py ./healthcheck.py" in dockerfile

    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    gateway = compose["services"]["gateway"]
    assert gateway["environment"]["BCC_TOKEN"].startswith("${BCC_TOKEN:?")  # no default: compose refuses
    for volume in compose["services"]["db"]["volumes"]:
        host = volume.split(":")[0]
        if host.startswith("./"):
            assert (REPO / host).exists(), host
    assert all(url.startswith("postgresql+psycopg://") for k, url in gateway["environment"].items() if k.endswith("_URL"))

    unit = (REPO / "deploy" / "crm-gateway.service").read_text()
    assert "ExecStart=/opt/crm-gateway/bin/crm-gateway run" in unit and "KillMode=mixed" in unit
