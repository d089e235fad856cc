"""Screenshots of the console for the README: `.venv/bin/python -m tests.web.console.screenshots`
writes docs/images/console-{overview,review,message}.png from a seeded gateway home in a
temporary folder, in Debian's chromium (as the browser tests use it)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.fixtures import REPO, Home
from tests.mail import make_mail
from tests.web.console.browser import ADMIN, Site, browser, sign_in
from tests.web.console.seeds import seeded


def main(out: Path = REPO / "docs" / "images") -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp))
        seeded(home)
        home.drop(
            "CRM sync",
            make_mail(
                sender="Dora Field <dora@fieldworks.example>",
                subject="Visit next Tuesday",
                html="<p>Hello,</p><p>Could we meet on <b>Tuesday at 10</b>? The plans are attached.</p><p>Dora</p>",
                attachments=[("plans.pdf", "application/pdf", b"%PDF-1.4 " + b"0" * 900)],
            ),
        )
        home.run_once()
        led = home.ledger()
        try:
            (dora,) = [r.id for r in led.messages_in(["review"]) if r.subject == "Visit next Tuesday"]
        finally:
            led.close()
        site = Site(home)
        site.start()
        try:
            with browser() as b:
                context = b.new_context(viewport={"width": 1100, "height": 760})
                page = context.new_page()
                sign_in(page, site, ADMIN)
                for name, path in (
                    ("overview", "/console/"),
                    ("review", "/console/review"),
                    ("message", f"/console/messages/{dora}"),
                ):
                    page.goto(site.base + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(out / f"console-{name}.png"), full_page=False)
                    print(out / f"console-{name}.png")
                context.close()
        finally:
            site.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "images")
