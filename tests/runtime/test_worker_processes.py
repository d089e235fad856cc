"""`processes: auto`, the default: as many worker processes as the cores the gateway may run
on (up to four) with the embedded CRM, worker threads with a CRM across the network; what a
running gateway uses shows in `status`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import yaml

from gateway.config import load_config
from gateway.config import model as config_module
from gateway.config.model import AUTO_PROCESSES_MAX, usable_cores
from gateway.errors import ConfigError
from tests.fixtures import Home
from tests.mail import make_mail
from tests.waiting import wait_for


def _write(home: Home, **changes: object) -> None:
    cfg = yaml.safe_load(home.config_path.read_text())
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 2), (3, 3), (16, AUTO_PROCESSES_MAX)])
def test_auto_is_one_process_per_core_up_to_the_cap_with_the_embedded_crm(home, monkeypatch, cores, expected):
    monkeypatch.setattr(config_module, "usable_cores", lambda: cores)
    _write(home, processes=None)  # not in the file: the default
    assert load_config(home.config_path).worker_processes() == expected
    _write(home, processes="auto")
    assert load_config(home.config_path).worker_processes() == expected


def test_auto_is_threads_with_a_crm_across_the_network_and_a_number_is_kept(home, monkeypatch):
    monkeypatch.setattr(config_module, "usable_cores", lambda: 8)
    _write(home, processes=None, crm={"backend": "webhook", "url": "http://127.0.0.1:9/hook"})
    assert load_config(home.config_path).worker_processes() == 1
    _write(home, processes=3, crm={"backend": "sql", "url": "sqlite:///var/crm.db"})
    assert load_config(home.config_path).worker_processes() == 3


@pytest.mark.parametrize(
    "stores",
    [
        {"ledger": {"url": "postgresql+psycopg://gw@db.example/ledger"}},
        {"crm": {"backend": "sql", "url": "postgresql+psycopg://gw@db.example/crm"}},
    ],
    ids=["ledger on PostgreSQL", "CRM on PostgreSQL"],
)
def test_auto_is_threads_when_the_embedded_stores_are_on_postgresql(home, monkeypatch, stores):
    """Across a socket the pipeline waits on round trips: 4 threads overlap them (bench/pipeline.py
    --db postgresql measured 0.19 of the baseline with one thread, 0.48 with four, 0.38 with two
    processes of one thread)."""
    monkeypatch.setattr(config_module, "usable_cores", lambda: 8)
    _write(home, processes=None, workers=None, **stores)
    config = load_config(home.config_path)
    assert (config.worker_processes(), config.workers) == (1, 4)
    _write(home, processes=None, workers=None, ledger={"url": "sqlite:///var/gateway.db"}, crm={"backend": "sql"})
    config = load_config(home.config_path)
    assert (config.worker_processes(), config.workers) == (min(8, AUTO_PROCESSES_MAX), 1)


@pytest.mark.parametrize("bad", ["many", 0, 65])
def test_a_wrong_processes_value_is_refused_with_its_place(home, bad):
    _write(home, processes=bad)
    with pytest.raises(ConfigError) as err:
        load_config(home.config_path)
    assert "processes" in str(err.value) and "config.yaml:" in str(err.value)
    res = home.cli("check")
    assert res.returncode != 0 and "processes" in (res.stdout + res.stderr)


def test_a_running_gateway_with_the_default_uses_a_process_per_core_and_says_so(home, tmp_path):
    expected = min(usable_cores(), AUTO_PROCESSES_MAX)
    _write(home, processes=None)
    for i in range(6):
        home.drop("VLeads", make_mail(sender=f"Sender {i} <s{i}@d{i}.example>", subject=f"auto {i}"))
    log = tmp_path / "run.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
            cwd=home.root,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    try:

        def status() -> dict:
            return json.loads(home.cli("status", "--json", check=True).stdout)

        assert wait_for(lambda: status()["totals"].get("done") == 6, 180), log.read_text()[-3000:]
        assert wait_for(lambda: (status().get("service") or {}).get("processes") == expected, 60), status().get("service")
        text = home.cli("status", check=True).stdout
        if expected > 1:
            assert f"{expected} worker processes" in text, text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert len(home.dump()["emails"]) == 6
