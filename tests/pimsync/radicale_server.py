"""A real Radicale CardDAV server (from PyPI, the `test` extra) for the contact sync's tests:
started unprivileged on 127.0.0.1 and a free port, htpasswd logins, each user's address book
made with an extended MKCOL (RFC 5689) as a CardDAV client would."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import httpx

from tests.waiting import wait_for

PASSWORD = "secret"
MKCOL = """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>
<D:resourcetype><D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Radicale:
    def __init__(self, root: Path, users: list[str]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "users").write_text("".join(f"{u}:{PASSWORD}\n" for u in users))
        conf = root / "radicale.conf"
        conf.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {root / 'users'}\nhtpasswd_encryption = plain\n\n"
            f"[rights]\ntype = owner_only\n\n[storage]\nfilesystem_folder = {root / 'collections'}\n\n"
            "[logging]\nlevel = warning\n"
        )
        self.log = (root / "radicale.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(conf)], stdout=self.log, stderr=subprocess.STDOUT
        )
        if not wait_for(lambda: httpx.get(self.url + "/.web/", timeout=10).status_code < 500, timeout=60):
            self.stop()
            raise RuntimeError(f"Radicale did not start: {(root / 'radicale.log').read_text()}")

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, PASSWORD), timeout=60)

    def make_addressbook(self, user: str, name: str = "contacts") -> str:
        """The URL of a new, empty address book of `user`."""
        with self.client(user) as c:
            c.request("PROPFIND", f"/{user}/", headers={"Depth": "0"})  # makes the user's principal
            r = c.request("MKCOL", f"/{user}/{name}/", content=MKCOL, headers={"Content-Type": "application/xml"})
            assert r.status_code == 201, (r.status_code, r.text)
        return f"{self.url}/{user}/{name}/"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def __enter__(self) -> Radicale:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
