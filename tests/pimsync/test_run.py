"""The contact sync inside `crm-gateway run` (gateway/runtime/pimsync.py), against a real
Radicale: a contact written into the CRM by plain SQL while the gateway runs reaches the
address book long before the book interval (an hour here) would have started a round; a
book that cannot be reached is reported in `status` and does not stop the others; a stop in
the middle of a burst and a start again leave one card per contact."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World
from tests.waiting import wait_for
from tests.web.console.browser import free_port

EVERY = 3600  # the book interval: no round in a test's time comes from it but the first


def _configure(w: World, web: int | None = None) -> None:
    cfg = yaml.safe_load(w.home.config_path.read_text())
    cfg["pimsync"]["every"] = EVERY
    if web is not None:
        cfg["web"] = {"listen": f"127.0.0.1:{web}"}
    cfg["pimsync"]["addressbooks"].append(
        {"name": "nowhere", "url": "http://127.0.0.1:9/nobody/contacts/", "crm_user": "nobody@example.com", "timeout": 5}
    )
    w.home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _start(w: World, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(w.home.config_path)],
        cwd=w.home.root,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _books(w: World) -> dict[str, dict[str, Any]]:
    proc = w.home.cli("status", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return {b["book"]: b for b in json.loads(proc.stdout)["pimsync"]}


def _insert(w: World, user: str, first: str, last: str) -> None:
    w.sql(
        "INSERT INTO contacts (owner, fields, created_by_gateway, created_at, first_name, last_name) "
        "VALUES (?, '{}', 0, '2026-01-01 00:00:00', ?, ?)",
        w.owner(user),
        first,
        last,
    )


def test_run_syncs_the_books_a_crm_change_within_seconds_and_a_broken_book_is_reported(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    w = World(tmp_path, radicale, *users)
    port = free_port()
    _configure(w, web=port)
    book = f"{w.alice}-contacts"
    log = tmp_path / "run.log"
    proc = _start(w, log)
    try:
        # the first round of each book, at the start; the unreachable one failed, in words
        assert wait_for(lambda: _books(w)[book]["rounds"] >= 1 and _books(w)["nowhere"]["last_error"], timeout=180), (
            log.read_text()
        )
        first = _books(w)[book]
        assert first["holder"] and first["syncing"] and first["last_error"] == ""
        broken = _books(w)["nowhere"]
        assert "127.0.0.1:9" in broken["last_error"] or "connect" in broken["last_error"].lower(), broken
        assert broken["failed_rounds"] >= 1

        _insert(w, w.alice, "Plain", "Sql")
        # the book's own next round is an hour away: only the CRM's feed can bring the card now
        assert wait_for(lambda: len(w.cards(w.alice)) == 1, timeout=180), log.read_text()
        (card,) = [c for _, c in w.cards(w.alice).values()]
        assert (card.fields.first_name, card.fields.last_name) == ("Plain", "Sql")
        assert proc.poll() is None  # the broken book did not stop the gateway

        assert wait_for(lambda: _books(w)[book]["totals"].get("cards_created") == 1, timeout=60)
        now = _books(w)[book]
        assert now["rounds"] >= 2 and now["conflicts_open"] == 0
        text = w.home.cli("status").stdout
        assert f"address book {book} ({w.owner(w.alice)}): last round" in text
        assert "address book nowhere (nobody@example.com)" in text and "failing:" in text

        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        assert f'crm_gateway_pimsync_items_total{{book="{book}",what="cards_created"}} 1.0' in metrics
        assert f'crm_gateway_pimsync_conflicts_open{{book="{book}"}} 0.0' in metrics
        failed = [line for line in metrics.splitlines() if 'book="nowhere",outcome="failed"' in line]
        assert failed and float(failed[0].split()[-1]) >= 1, metrics
    finally:
        _stop(proc)
        w.close()
    assert proc.returncode == 0, log.read_text()


def test_a_stop_in_the_middle_of_a_burst_and_a_start_again_duplicate_nothing(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    w = World(tmp_path, radicale, *users)
    _configure(w)
    log = tmp_path / "run.log"
    proc = _start(w, log)
    try:
        assert wait_for(lambda: _books(w)[f"{w.alice}-contacts"]["rounds"] >= 1, timeout=180), log.read_text()
        for i in range(30):
            _insert(w, w.alice, f"Burst{i}", "Person")
        # stopped as soon as the first card is there: the round is (most likely) in hand
        assert wait_for(lambda: len(w.cards(w.alice)) >= 1, timeout=180, step=0.05), log.read_text()
        _stop(proc)
        proc = _start(w, log)
        assert wait_for(lambda: len(w.cards(w.alice)) >= 30, timeout=180), log.read_text()
        # a round more (the feed is quiet): nothing new comes
        assert wait_for(lambda: _books(w)[f"{w.alice}-contacts"]["rounds"] >= 1, timeout=60)
        cards = w.cards(w.alice)
        names = sorted(c.fields.first_name for _, c in cards.values())
        assert names == sorted(f"Burst{i}" for i in range(30)), names
        assert w.sql("SELECT count(*) FROM contacts") == [(30,)]
    finally:
        _stop(proc)
        w.close()
