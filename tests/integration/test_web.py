"""The status page of a running gateway, fetched over HTTP like a browser or Prometheus would."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import yaml

from tests.mail import make_mail
from tests.waiting import wait_for as _wait


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def test_status_page_review_list_and_metrics(home):
    port = _free_port()
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["web"] = {"listen": f"127.0.0.1:{port}"}
    home.config_path.write_text(yaml.safe_dump(cfg))
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>"))
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", subject="unknown"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
        cwd=home.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait(lambda: _get(base + "/healthz") == (200, "ok")), "the status page did not come up"
        assert _wait(lambda: json.loads(_get(base + "/status.json")[1])["totals"] == {"done": 1, "review": 1})
        status, page = _get(base + "/")
        assert status == 200 and "VLeads" in page and "1 waiting for review" in page
        review = json.loads(_get(base + "/review.json")[1])["review"]
        assert [r["from"] for r in review] == ["who@nowhere.example"]
        metrics = _get(base + "/metrics")[1]
        assert 'crm_gateway_messages{folder="VLeads",source="local",state="done"} 1.0' in metrics
        assert 'crm_gateway_messages{folder="CRM sync",source="local",state="review"} 1.0' in metrics
        assert 'crm_gateway_source_connected{source="local"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
