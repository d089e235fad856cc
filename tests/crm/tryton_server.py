"""A real trytond for the connector tests (no mock of Tryton anywhere).

`TrytonTemplate.build()` runs once per test session (~15 s): it writes a config file, creates
an SQLite database with `trytond-admin` (`--all`, then `-u party sale_opportunity
--activate-dependencies`), starts the server once to give the admin a currency and a company
(opportunities need one), and stops it. Each test then gets `TrytonServer`: a copy of that
`.sqlite` file (milliseconds) served by its own `trytond -c CONF -d NAME` on 127.0.0.1 and a
free port (ready in ~1 s). The recipe and its pitfalls are in docs/TESTING.md ("Tryton").

Tests skip with the reason when trytond or its modules are not importable.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.crm.doubles.base import HttpDouble, Reply, Request

DB = "crm"
PASSWORD = "admin-pw-for-tests"
_BIN = Path(sys.executable).parent


def skip_reason() -> str | None:
    """Why Tryton cannot run here, or None."""
    try:
        import trytond  # noqa: F401
        import trytond.modules.party  # noqa: F401
        import trytond.modules.sale_opportunity  # noqa: F401
    except ImportError as e:
        return f"trytond with party and sale_opportunity is not installed ({e}); pip install '.[test]'"
    for exe in ("trytond", "trytond-admin"):
        if not (_BIN / exe).exists() and not shutil.which(exe):
            return f"{exe} not found next to {sys.executable}"
    return None


def _exe(name: str) -> str:
    return str(_BIN / name) if (_BIN / name).exists() else (shutil.which(name) or name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_conf(root: Path, port: int) -> Path:
    conf = root / "trytond.conf"
    conf.write_text(
        f"[database]\nuri = sqlite://\npath = {root}\n\n[web]\nlisten = 127.0.0.1:{port}\n\n[session]\nmax_attempt = 1000\n"
    )
    return conf


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TRYTOND_CONFIG", None)
    env.pop("TRYTOND_DATABASE_URI", None)
    return env


class Rpc:
    """Just enough JSON-RPC for the fixture and the tests' read-backs (the connector has its own)."""

    def __init__(self, url: str, database: str = DB) -> None:
        self.url = url.rstrip("/") + f"/{database}/rpc/"
        self.auth = ""
        self.context: dict[str, Any] = {}

    def login(self, user: str = "admin", password: str = PASSWORD) -> Rpc:
        uid, key, *_ = self.call("common.db.login", user, {"password": password}, "en", context=False)
        self.auth = "Session " + base64.b64encode(f"{user}:{uid}:{key}".encode()).decode()
        self.context = self.call("model.res.user.get_preferences", True)
        return self

    def call(self, method: str, *params: Any, context: bool | dict[str, Any] = True) -> Any:
        args = list(params)
        if context is not False:
            args.append(self.context if context is True else context)
        body = json.dumps({"id": 1, "method": method, "params": args}, default=_encode).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        if self.auth:
            req.add_header("Authorization", self.auth)
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = json.loads(resp.read(), object_hook=_decode)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data["result"]


def _encode(o: Any) -> Any:
    from decimal import Decimal

    if isinstance(o, Decimal):
        return {"__class__": "Decimal", "decimal": str(o)}
    if isinstance(o, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(o).decode()}
    raise TypeError(type(o))


def _decode(d: dict[str, Any]) -> Any:
    if d.get("__class__") == "bytes":
        return base64.b64decode(d["base64"])
    if d.get("__class__") == "Decimal":
        from decimal import Decimal

        return Decimal(d["decimal"])
    return d


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, deadline_s: float = 300) -> None:
    body = json.dumps({"id": 0, "method": "common.server.version", "params": []}).encode()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"trytond exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            req = urllib.request.Request(url.rstrip("/") + "/rpc/", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:  # a busy machine: slow, not down
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"trytond not ready after {deadline_s} s:\n{log.read_text()[-3000:]}")


@dataclass
class TrytonServer:
    """One running trytond on a private copy of the template database."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    company: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    database = DB
    username = "admin"
    password = PASSWORD

    def rpc(self) -> Rpc:
        return Rpc(self.url).login()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(root: Path, company: int = 0) -> TrytonServer:
    port = free_port()
    conf = _write_conf(root, port)
    log = root / "trytond.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [_exe("trytond"), "-c", str(conf), "-d", DB], stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=root
        )
    server = TrytonServer(root, port, proc, company)
    try:
        _wait_ready(server.url, proc, log)
    except BaseException:
        server.stop()
        raise
    return server


class TrytonTemplate:
    """The database every test copies: admin, party, sale_opportunity, a currency and a company."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.company = 0

    def build(self) -> TrytonTemplate:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = _write_conf(self.root, free_port())
        (self.root / f"{DB}.sqlite").touch()
        passfile = self.root / "admin.pass"
        passfile.write_text(PASSWORD)
        env = _env() | {"TRYTONPASSFILE": str(passfile)}
        admin = _exe("trytond-admin")
        for args in (["--all", "--email", "admin@example.com"], ["-u", "party", "sale_opportunity", "--activate-dependencies"]):
            proc = subprocess.run(
                [admin, "-c", str(conf), "-d", DB, *args], env=env, capture_output=True, text=True, timeout=1500
            )  # minutes on a loaded machine
            if proc.returncode != 0:
                raise RuntimeError(f"trytond-admin {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        server = start_server(self.root)
        try:
            self.company = _make_company(server.rpc())
        finally:
            server.stop()
        _checkpoint(self.root / f"{DB}.sqlite")
        return self

    def server(self, root: Path) -> TrytonServer:
        """A server on a fresh copy of the template in `root`."""
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.root / f"{DB}.sqlite", root / f"{DB}.sqlite")
        if (self.root / DB).is_dir():
            shutil.copytree(self.root / DB, root / DB)
        return start_server(root, self.company)


def _checkpoint(db: Path) -> None:
    """trytond runs SQLite in WAL mode: fold the log into the file so that a copy of the file
    alone is the whole database."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _make_company(rpc: Rpc) -> int:
    """Opportunities need a company (and a currency); make the admin work for it."""
    from decimal import Decimal

    [cur] = rpc.call(
        "model.currency.currency.create",
        [{"name": "Euro", "code": "EUR", "symbol": "€", "rounding": Decimal("0.01"), "digits": 2}],
    )
    [party] = rpc.call("model.party.party.create", [{"name": "Example Ltd"}])
    [company] = rpc.call("model.company.company.create", [{"party": party, "currency": cur}])
    uid = rpc.call("model.res.user.search", [("login", "=", "admin")], 0, 1, None)[0]
    rpc.call("model.res.user.write", [uid], {"companies": [["add", [company]]], "company": company})
    return company


class FaultProxy(HttpDouble):
    """A fault-injection test double: a small HTTP proxy in front of the real trytond.

    Every request goes through to trytond unchanged, except those the test arms a fault for
    (the contract's `FarSide`, from `doubles/base.HttpDouble`): an HTTP status with headers
    (429 with Retry-After, 5xx, 4xx), a stall past the connector's timeout, or — for the next
    write — a Tryton UserError in Tryton's own JSON-RPC error format. Nothing of Tryton is
    imitated otherwise: the answers are trytond's.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")

    def handle(self, req: Request) -> Reply:
        fwd = urllib.request.Request(self.upstream + req.path, req.body, method=req.method)
        for h in ("content-type", "authorization"):
            if h in req.headers:
                fwd.add_header(h, req.headers[h])
        try:
            with urllib.request.urlopen(fwd, timeout=120) as resp:
                headers = {
                    k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "content-encoding", "retry-after")
                }
                return Reply(resp.status, resp.read(), headers)
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.read(), {"Content-Type": e.headers.get("Content-Type", "text/plain")})

    def is_write(self, req: Request) -> bool:
        try:
            method = json.loads(req.body).get("method", "")
        except ValueError:
            return False
        return method.startswith("model.") and method.rsplit(".", 1)[-1] in ("create", "write", "delete")

    def rejection(self, req: Request, message: str) -> Reply:
        req_id = json.loads(req.body).get("id", 0)
        body = json.dumps({"id": req_id, "error": ["UserError", [message, "", None]]}).encode()
        return Reply(200, body, {"Content-Type": "application/json"})


_TEMPLATE: list[TrytonTemplate] = []


def session_template(tmp_path_factory: Any) -> TrytonTemplate:
    """The template database, built on first use and shared by every Tryton test module of
    this pytest run (a session fixture in each module would build it once per module)."""
    import pytest

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if not _TEMPLATE:
        _TEMPLATE.append(TrytonTemplate(tmp_path_factory.mktemp("tryton-template")).build())
    return _TEMPLATE[0]
