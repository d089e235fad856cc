"""Two gateways on one PostgreSQL ledger and CRM, both configured with the same two address
books: each book is synced by one of them (its lease), and when that gateway is killed the
other takes the book over and a CRM change reaches it again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.crm.sql_backends import postgres_url
from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World
from tests.waiting import wait_for

pytestmark = pytest.mark.postgres


class Gw:
    def __init__(self, w: World, name: str) -> None:
        cfg = yaml.safe_load(w.home.config_path.read_text())
        cfg["gateway"] = {"name": name, "lease": 3.0}
        cfg["spool"] = f"var/spool-{name}"
        cfg["pimsync"]["every"] = 3600
        self.root, self.name = w.home.root, name
        self.config = w.home.root / f"config-{name}.yaml"
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.log = w.home.root / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(self.config)],
            cwd=self.root,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )

    def books(self) -> dict[str, dict[str, Any]]:
        res = subprocess.run(
            [sys.executable, "-m", "gateway", "status", "--json", "-c", str(self.config)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return {b["book"]: b for b in json.loads(res.stdout)["pimsync"]}

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_each_book_is_synced_by_one_gateway_and_taken_over_when_it_dies(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    with postgres_url() as crm_url, postgres_url() as ledger_url:
        w = World(tmp_path, radicale, *users, crm_url=crm_url, ledger_url=ledger_url)
        a = b = None
        try:
            a, b = Gw(w, "gw-a"), Gw(w, "gw-b")
            names = [f"{w.alice}-contacts", f"{w.bob}-contacts"]

            def held() -> dict[str, str | None]:
                return {n: d["holder"] for n, d in a.books().items() if d["rounds"] >= 1}

            assert wait_for(lambda: set(held()) == set(names), timeout=180), a.log.read_text() + b.log.read_text()
            holders = held()
            assert set(holders.values()) <= {"gw-a", "gw-b"}  # one holder per book, never both

            alice_book = names[0]
            owner = a if holders[alice_book] == "gw-a" else b
            other = b if owner is a else a
            owner.stop(signal.SIGKILL)
            # the lease lapses (3 s) and the other gateway takes the book
            assert wait_for(lambda: other.books()[alice_book]["holder"] == other.name, timeout=180), other.log.read_text()
            w.add_contact(w.alice, "after-takeover", first_name="Taken", last_name="Over")
            assert wait_for(lambda: len(w.cards(w.alice)) == 1, timeout=180), other.log.read_text()
        finally:
            for g in (a, b):
                if g is not None:
                    g.stop()
            w.close()
