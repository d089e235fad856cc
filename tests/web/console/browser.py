"""The console's browser tests' machinery: the gateway's web app served by uvicorn on
127.0.0.1 in a thread of the test, and Debian's chromium driven by Playwright.

Playwright's own browser download is never used: `make test-deps` installs Debian's chromium
and the tests launch /usr/bin/chromium, or skip saying so when it is missing."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import Home
from tests.waiting import wait_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
STANDIN = Path(__file__).resolve().parent / "office_standin.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_or_skip() -> str:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM}: `make test-deps` installs Debian's (the console's browser tests need it)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing: `make .venv/.installed-test` installs the test extras")
    return CHROMIUM


@dataclass(frozen=True)
class Person:
    """Who signs in to the console in a test: a name, a role and their addresses (the
    mailboxes they own), written into `web.users` with an argon2 hash of the password."""

    name: str
    role: str
    addresses: tuple[str, ...] = ()
    password: str = "correct horse battery staple"


ADMIN = Person("ada", "admin")


@dataclass
class Site:
    """The gateway's web app over a gateway home, served on a free port of 127.0.0.1."""

    home: Home
    people: tuple[Person, ...] = (ADMIN,)
    public_url: str = "https://crm-gateway.example.com"
    port: int = field(default_factory=free_port)
    gw: Any = None
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self) -> None:
        cfg = yaml.safe_load(self.home.config_path.read_text())
        from gateway.admin.access import hash_password

        hashes = {p.password: hash_password(p.password) for p in self.people}
        users = [
            {"name": p.name, "password_hash": hashes[p.password], "role": p.role, "addresses": list(p.addresses)}
            for p in self.people
        ]
        cfg["web"] = {**(cfg.get("web") or {}), "listen": f"127.0.0.1:{self.port}", "public_url": self.public_url, "users": users}
        self.home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))

    def start(self) -> None:
        import uvicorn

        from gateway.web.app import make_app

        self.configure()
        self.gw = self.home.gateway().__enter__()
        app = make_app(self.gw)
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self._thread.start()
        assert wait_for(lambda: _get(self.base + "/healthz") == 200, timeout=60), "the web app did not come up"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.gw is not None:
            self.gw.__exit__(None, None, None)


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status


def sign_in(page: Any, site: Site, person: Person) -> None:
    """Sign in as a person does: the sign-in form, name and password."""
    page.goto(site.base + "/signin")
    page.get_by_label("Name").fill(person.name)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    # the password check takes a while on a busy machine: wait for the page that follows it
    page.wait_for_url(lambda u: "/signin" not in u, timeout=60_000)


@dataclass
class Watch:
    """What a page did that a hostile mail might have made it do: dialogs, console errors, navigations."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@contextmanager
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    path = chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        try:
            yield b
        finally:
            b.close()


def route_office_js(page: Any, mail: dict[str, Any]) -> None:
    """Office.js from Microsoft's CDN is answered by the test stand-in
    (tests/web/console/office_standin.js), with `mail` as the open item."""
    import json

    script = f"window.standinMail = {json.dumps(mail)};\n" + STANDIN.read_text()
    page.unroute(OFFICE_JS)
    page.route(OFFICE_JS, lambda route: route.fulfill(body=script, content_type="text/javascript"))


SitePeople = Callable[..., Site]
