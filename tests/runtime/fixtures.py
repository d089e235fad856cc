"""Gateways sharing one ledger and CRM: a config each (own spool, own name), the same or
other Maildir mailboxes, started as `crm-gateway run` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures import REPO

LEASE = 3.0  # seconds: a takeover is waited for by polling, never timed


class Mailboxes:
    """Maildir mailboxes (one `maildir` source each, folder VLeads) that gateways watch."""

    def __init__(self, root: Path, n: int) -> None:
        self.root = root
        self.names = [f"box{i}" for i in range(n)]
        for name in self.names:
            for sub in ("new", "cur", "tmp"):
                (root / name / "VLeads" / sub).mkdir(parents=True, exist_ok=True)
        self._n = 0

    def drop(self, name: str, raw: bytes) -> None:
        self._n += 1
        file = f"{1700000000 + self._n}.{uuid.uuid4().hex[:12]}.host"
        tmp = self.root / name / "VLeads" / "tmp" / file
        tmp.write_bytes(raw)
        os.replace(tmp, self.root / name / "VLeads" / "new" / file)

    def sources(self, names: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "type": "maildir",
                "path": str(self.root / name),
                "layout": "fs",
                "owner": [f"{name}@example.com"],
                "folders": ["VLeads"],
            }
            for name in names
        ]


class SharingGateway:
    """One gateway of several on one PostgreSQL ledger and CRM: its own folder and spool."""

    def __init__(
        self, root: Path, name: str, ledger_url: str, crm_url: str, sources: list[dict[str, Any]], lease: float = LEASE
    ) -> None:
        self.root = root
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(REPO / "rules", root / "rules", dirs_exist_ok=True)
        cfg = {
            "gateway": {"name": name, "lease": lease},
            "ledger": {"url": ledger_url},
            "crm": {"backend": "sql", "url": crm_url},
            "rules": ["rules/*.yaml"],
            "spool": "var/spool",
            "workers": 2,
            "internal_domains": ["example.com"],
            "retry": {"base_delay": 0.5, "max_attempts": 5},
            "sources": sources,
        }
        self.config_path = root / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.proc: subprocess.Popen[str] | None = None
        self.log = root / "gateway.log"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(self.config_path)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            text=True,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args, "-c", str(self.config_path)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def status(self) -> dict[str, Any]:
        res = self.cli("status", "--json")
        return json.loads(res.stdout)

    def holders(self) -> dict[str, str | None]:
        """Each source's mailbox holder, as `status --json` shows it."""
        return {s["name"]: s["holder"] for s in self.status()["sources"]}

    def crm(self) -> dict[str, Any]:
        res = self.cli("crm", "dump", "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)
