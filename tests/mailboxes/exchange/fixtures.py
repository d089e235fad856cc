"""Helpers of the Exchange tests: sources pointing at the EWS and Graph doubles, gateway homes
using them, the gateway running in this process, mails. The pytest fixtures are in conftest.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.fixtures import Home
from tests.mailboxes.exchange.ews_double import EwsDouble
from tests.mailboxes.exchange.graph_double import GraphDouble

MAILBOX = "sales@example.com"
FOLDERS = ["VLeads", "VContacts", "VAccounts", "CRM sync"]


def mail(n: int, sender: str | None = None, subject: str = "Quote request") -> bytes:
    sender = sender or f"buyer{n}@customer{n}.example"
    return (
        f"From: Buyer {n} <{sender}>\r\nTo: {MAILBOX}\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <m{n}.{sender}>\r\nDate: Mon, 02 Mar 2026 10:00:0{n % 10} +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nPlease send a quote.\r\n"
    ).encode()


def ews_source(d: EwsDouble, **kw: Any) -> dict[str, Any]:
    src = {
        "name": "exchange",
        "type": "ews",
        "url": d.url,
        "auth": "basic",
        "username": "svc-crm",
        "password": "secret",
        "mailboxes": [MAILBOX],
        "access": "impersonation",
        "build": "15.1.2507.6",
        "folders": FOLDERS,
        "create_folders": True,
        "streaming": False,
        "poll_interval": 300,
        "timeout": 60,
        "owner": [MAILBOX],
        "crm_user": MAILBOX,
    }
    src.update(kw)
    return src


def graph_source(d: GraphDouble, ca: str, **kw: Any) -> dict[str, Any]:
    src = {
        "name": "online",
        "type": "graph",
        "tenant_id": d.tenant,
        "client_id": d.client_id,
        "client_secret": d.secret,
        "mailboxes": [MAILBOX],
        "authority": d.base,
        "endpoint": f"{d.base}/v1.0",
        "ca_file": ca,
        "folders": FOLDERS,
        "create_folders": True,
        "poll_interval": 0.2,
        "timeout": 60,
        "owner": [MAILBOX],
        "crm_user": MAILBOX,
    }
    src.update(kw)
    return src


def home_with(tmp_path: Path, name: str, source: dict[str, Any]) -> Home:
    root = tmp_path / name
    root.mkdir()
    return Home(root, extra={"sources": [source]})


class Running:
    """`crm-gateway run` in a thread, stopped (and the gateway closed) on exit."""

    def __init__(self, home: Home) -> None:
        self.gw = home.gateway()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.gw.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self.gw

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(30)
        self.gw.close()


def emails(home: Home) -> list[dict[str, Any]]:
    return home.dump()["emails"]


def moving_leads_to(home: Home, folder: str) -> None:
    """The shipped rules, with the Leads rule moving its mail into `folder` after tagging it."""
    rules = home.root / "rules" / "folders.yaml"
    text = rules.read_text()
    assert "      - stop\n" in text
    rules.write_text(text.replace("      - stop\n", f"      - move: {folder}\n      - stop\n", 1))
