"""Helpers of the IMAP tests: a gateway home whose source is the tests' Dovecot (run in-process
so a test can stop and start it), waiting without timed assertions, and mails to write back.
The pytest fixtures that hand them out are in conftest.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures import Home
from tests.mailboxes.imap.dovecot import Dovecot

FOLDERS = ["VLeads", "VContacts", "VAccounts", "CRM sync"]
MANY = 200  # users of the `many_dovecot` fixture
MASTER = ("admin", "masterpw")


def fleet(users: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """The `source` of an ImapHome reaching these users' mailboxes through the master user."""
    src: dict[str, Any] = {"username": "", "password": MASTER[1], "master_user": MASTER[0], "folders": ["VLeads"]}
    if users is not None:
        src["mailboxes"] = users
    src.update(kw)
    return src


def wait_for(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Wait for a condition with a generous deadline (never a timed assertion)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except Exception as exc:  # a server restarting, a database being written
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class ImapHome(Home):
    """A gateway home reading `folders` from the Dovecot account `user`."""

    def __init__(
        self,
        root: Path,
        dovecot: Dovecot,
        *,
        user: str = "alice",
        password: str | None = None,
        folders: list[str] | None = None,
        source: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        src = {
            "name": "mail",
            "type": "imap",
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": user,
            "password": password if password is not None else dovecot.users.get(user, ""),
            "owner": ["me@example.com"],
            "crm_user": "me@example.com",
            "folders": folders or FOLDERS,
            "create_folders": True,
            "poll_interval": 1,
        }
        src.update(source or {})
        cfg = {"sources": [src], "retry": {"base_delay": 0.2, "max_delay": 1, "max_attempts": 100}}
        cfg.update(extra or {})
        super().__init__(root, extra=cfg)
        self.dovecot = dovecot
        self._run: tuple[Any, threading.Event, threading.Thread] | None = None

    def start(self, **kw: Any) -> Any:
        gw = self.gateway(**kw)
        stop = threading.Event()
        t = threading.Thread(target=gw.run, args=(stop,), name="gateway", daemon=True)
        t.start()
        self._run = (gw, stop, t)
        return gw

    def stop(self) -> None:
        if self._run is None:
            return
        gw, stop, t = self._run
        stop.set()
        t.join(60)
        assert not t.is_alive(), "the gateway did not stop"
        gw.close()
        self._run = None

    @property
    def gw(self) -> Any:
        assert self._run is not None
        return self._run[0]

    def mailboxes(self) -> dict[str, dict[str, Any]]:
        """Each mailbox of the first source as `status --json` shows it (written just now)."""
        self.gw.write_status()
        return self.status_json()["sources"][0]["mailboxes"]

    def watching(self, users: list[str]) -> bool:
        """Every one of these mailboxes watched (in IDLE), as the running source says."""
        boxes = self.gw.sources[0].boxes
        return all(u in boxes and boxes[u].watch_state.value == "watching" for u in users)

    def source_status(self) -> dict[str, Any]:
        self.gw.write_status()
        return self.gw.sources[0].status()

    def wait_idle(self, folder: str, timeout: float = 30) -> None:
        """The folder's IDLE loop is connected (its first scan is over)."""
        wait_for(lambda: self.gw.sources[0].folders[folder].connected, timeout, f"{folder} connected")

    def tagged(self, folder: str, message_id: str, *keywords: str) -> bool:
        flags = self.dovecot.flags(folder).get(message_id, set())
        return all(k in flags for k in keywords)

    def emails(self) -> list[dict[str, Any]]:
        return self.dump()["emails"]

    def status_json(self) -> dict[str, Any]:
        proc = self.cli("status", "--json", check=True)
        return json.loads(proc.stdout)


def message_id_of(raw: bytes) -> str:
    for line in raw.decode().splitlines():
        if line.lower().startswith("message-id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Message-ID")


def five_in_vleads_two_dragged(dovecot: Dovecot, tag: str) -> tuple[list[bytes], list[int]]:
    """Five mails APPENDed to VLeads; the fourth then dragged to VContacts (another watched
    folder), the fifth to Archive (out of every watched one). Their raw bytes and first UIDs."""
    from tests.mail import make_mail

    raws = [make_mail(sender=f"{tag}{i} <{tag.lower()}{i}@firm.example>", subject=f"{tag} batch {i}") for i in range(5)]
    uids = [dovecot.append("VLeads", raw) for raw in raws]
    dovecot.create("Archive")
    dovecot.create("VContacts")
    dovecot.move("VLeads", "VContacts", message_id_of(raws[3]))
    dovecot.move("VLeads", "Archive", message_id_of(raws[4]))
    return raws, uids


def apply_tag_batch(
    home: ImapHome, uidvalidity: int, uids: list[int], raws: list[bytes], store: str
) -> tuple[list[Any], list[Any], list[list[int]], bool]:
    """The write-back alone (no running gateway): tag the VLeads copies "CRM sync" + "Synced"
    and untag "CRM error", in one `apply_many`, counting the UIDs of each call to the client's
    `store` method (add_flags, add_gmail_labels). Returns requests, outcomes, those UID lists
    and whether the write-back saw Gmail."""
    from gateway.mailboxes.base import TagRequest

    gw = home.gateway()
    try:
        writeback, source = gw.writebacks["mail"], gw.sources[0]
        requests = [
            TagRequest(
                source.ref("VLeads", uidvalidity, uid),
                frozenset(),
                frozenset({"CRM sync", "Synced"}),
                frozenset({"CRM error"}),
                None,
                message_id_of(raw),
            )
            for uid, raw in zip(uids, raws, strict=False)
        ]
        client = writeback._conn()
        stores: list[list[int]] = []
        original = getattr(client, store)

        def counted(messages: Any, *args: Any) -> Any:
            stores.append(list(messages))
            return original(messages, *args)

        setattr(client, store, counted)
        return requests, writeback.apply_many(requests), stores, bool(writeback._info.gmail)
    finally:
        gw.close()


def user_sources(dovecot: Dovecot, users: list[str], folder: str = "VLeads") -> list[dict[str, Any]]:
    """One `imap` source per Dovecot user, named as the user: the mailboxes of gateways sharing
    a ledger in the tests (tests/runtime/fixtures.py SharingGateway)."""
    return [
        {
            "name": user,
            "type": "imap",
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": user,
            "password": dovecot.users[user],
            "owner": [f"{user}@example.com"],
            "folders": [folder],
            "create_folders": True,
            "poll_interval": 1,
        }
        for user in users
    ]
