"""`status`, /status.json and the page of a running, a stopped and a killed gateway, and the
log lines of a `run` an admin reads: start-up, failures at warning level, SIGHUP heard."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import yaml

from gateway.admin.liveness import STALE_AFTER
from tests.mail import make_mail
from tests.waiting import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def _status(home) -> dict:
    return json.loads(home.cli("status", "--json", check=True).stdout)


def _start(home, log_path, **cfg_extra) -> subprocess.Popen:
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg.update(cfg_extra)
    home.config_path.write_text(yaml.safe_dump(cfg))
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
        cwd=home.root,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
        text=True,
    )


def _lines(log_path, *words: str) -> list[str]:
    return [l for l in log_path.read_text().splitlines() if all(w in l for w in words)]


def test_status_and_logs_of_a_running_then_stopped_gateway(home, tmp_path):
    port = _free_port()
    log = tmp_path / "run.log"
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>"))
    home.drop(
        "VLeads", make_mail(sender="Big Ben <ben@big.example>", attachments=[("a.bin", "application/octet-stream", b"x" * 5000)])
    )
    proc = _start(home, log, web={"listen": f"127.0.0.1:{port}"}, max_message_size="3KB")
    try:
        assert wait_for(
            lambda: _status(home)["running"] and _status(home)["totals"] == {"done": 1, "quarantined": 1}, timeout=90
        ), log.read_text()
        doc = _status(home)
        assert doc["liveness"]["pid"] == proc.pid and doc["liveness"]["why"] == "running"
        assert 0 <= doc["liveness"]["heartbeat_age_seconds"] <= STALE_AFTER
        (src,) = doc["sources"]
        assert src["connected"] is True and src["status_age_seconds"] is not None
        text = home.cli("status", check=True).stdout
        assert f"gateway: running (pid {proc.pid}), heartbeat" in text
        assert json.loads(_get(f"http://127.0.0.1:{port}/status.json"))["running"] is True
        assert f"gateway: running (pid {proc.pid})" in _get(f"http://127.0.0.1:{port}/")

        (start,) = _lines(log, "gateway running:")
        assert f"config {home.config_path}" in start and f"status page http://127.0.0.1:{port}/" in start
        (failed,) = _lines(log, "event=message", "result=quarantined")
        assert "level=warning" in failed and "max_message_size" in failed
        (done,) = _lines(log, "event=message", "result=done")
        assert "level=info" in done

        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: _lines(log, "rules unchanged"), timeout=60), log.read_text()
        assert "level=info" in _lines(log, "rules unchanged")[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()

    doc = _status(home)
    assert doc["running"] is False and doc["liveness"]["why"] == "stopped"
    (src,) = doc["sources"]
    assert src["connected"] is False and src["last_connected"] is True
    text = home.cli("status", check=True).stdout
    assert "gateway: NOT running: stopped (last heartbeat" in text
    assert "connected yes" not in text and " yes " not in text


def test_status_after_a_kill_says_the_process_is_gone(home, tmp_path):
    log = tmp_path / "run.log"
    proc = _start(home, log)
    try:
        assert wait_for(lambda: _status(home)["running"], timeout=90), log.read_text()
    finally:
        proc.kill()
        proc.wait(timeout=60)
    doc = _status(home)
    assert doc["running"] is False
    assert doc["liveness"]["why"] == f"process {proc.pid} is gone (killed or crashed)"
    assert doc["sources"][0]["connected"] is False
    assert f"gateway: NOT running: process {proc.pid} is gone" in home.cli("status", check=True).stdout


def test_status_before_any_run_and_after_run_once(home):
    doc = _status(home)
    assert doc["running"] is False and doc["liveness"]["why"] == "no gateway has run yet"
    assert "gateway: NOT running: no gateway has run yet" in home.cli("status", check=True).stdout
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>"))
    assert home.cli("run", "--once").returncode == 0
    doc = _status(home)
    assert doc["running"] is False and doc["liveness"]["why"] == "stopped"
    assert doc["totals"] == {"done": 1}
