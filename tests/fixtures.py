"""What tests share: a gateway home in a temporary folder, on the embedded default (`Home`),
and the repository's paths. Test files import helpers from fixtures modules like this one,
never from another test file or from a conftest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ["VLeads", "VContacts", "VAccounts", "CRM sync"]


class Home:
    """A gateway installation: config.yaml, rules/, var/mail (Maildir), SQLite CRM and ledger."""

    def __init__(self, root: Path, extra: dict[str, Any] | None = None) -> None:
        self.root = root
        shutil.copytree(REPO / "rules", root / "rules")
        self.mail = root / "var" / "mail"
        for f in FOLDERS:
            for sub in ("new", "cur", "tmp"):
                (self.mail / f / sub).mkdir(parents=True, exist_ok=True)
        cfg: dict[str, Any] = {
            "ledger": {"url": "sqlite:///var/gateway.db"},
            "crm": {"backend": "sql", "url": "sqlite:///var/crm.db"},
            "rules": ["rules/*.yaml"],
            "workers": 2,
            # threads, whatever the cores: a test's handful of mails would wait for worker
            # processes to start (tests of `processes` set it; test_worker_processes checks "auto")
            "processes": 1,
            "internal_domains": ["example.com"],
            "retry": {"base_delay": 0, "max_attempts": 3},
            "sources": [
                {
                    "name": "local",
                    "type": "maildir",
                    "path": "var/mail",
                    "layout": "fs",
                    "owner": ["me@example.com"],
                    "crm_user": "me@example.com",
                    "folders": FOLDERS,
                }
            ],
        }
        for k, v in (extra or {}).items():
            cfg[k] = v
        self.config_path = root / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self._n = 0

    def drop(self, folder: str, raw: bytes, name: str | None = None) -> Path:
        """Deliver a file into a Maildir folder the way an MDA does (tmp/, then rename into new/)."""
        self._n += 1
        name = name or f"{1700000000 + self._n}.{uuid.uuid4().hex[:12]}.host"
        tmp = self.mail / folder / "tmp" / name
        tmp.write_bytes(raw)
        final = self.mail / folder / "new" / name
        os.replace(tmp, final)
        return final

    def config(self) -> Any:
        from gateway.config import load_config

        return load_config(self.config_path)

    def gateway(self, **kw: Any) -> Any:
        from gateway.runtime.gateway import Gateway

        return Gateway(self.config(), **kw)

    def run_once(self) -> dict[str, int]:
        with self.gateway() as gw:
            return gw.run_once()

    def cli(
        self,
        *args: str,
        check: bool = False,
        timeout: float = 120,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`crm-gateway ARGS -c config.yaml` in this home; `env`: variables added to ours."""
        proc = subprocess.run(
            [sys.executable, "-m", "gateway", *args, "-c", str(self.config_path)],
            cwd=self.root,
            env={**os.environ, **env} if env else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"crm-gateway {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def dump(self) -> dict[str, Any]:
        from gateway.crm.sql import SqlConnector

        crm = SqlConnector(f"sqlite:///{self.root / 'var' / 'crm.db'}")
        try:
            return crm.dump()
        finally:
            crm.close()

    def ledger(self) -> Any:
        from gateway.ledger import Ledger

        return Ledger(f"sqlite:///{self.root / 'var' / 'gateway.db'}")

    def states(self) -> dict[str, int]:
        led = self.ledger()
        try:
            out: dict[str, int] = {}
            for states in led.counts().values():
                for s, n in states.items():
                    out[s] = out.get(s, 0) + n
            return out
        finally:
            led.close()

    def location_tags(self, folder: str, name_part: str = "") -> list[list[str]]:
        led = self.ledger()
        try:
            with led.engine.connect() as c:
                from gateway.ledger.schema import locations

                rows = c.execute(locations.select().where(locations.c.folder == folder)).all()
            return [json.loads(r.tags) for r in rows if name_part in r.item_key]
        finally:
            led.close()
