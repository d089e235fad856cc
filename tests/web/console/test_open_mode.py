"""The console with nobody signing in (loopback, no web.users, no token), in a browser: its own
forms decide; the same form posted by a page of another site decides nothing."""

from __future__ import annotations

from urllib.parse import quote

from tests.web.console.browser import Site
from tests.web.console.seeds import seeded


def test_the_console_decides_and_another_sites_form_does_not(home, page) -> None:
    seeded(home)
    site = Site(home, people=())  # no web.users: open to whoever reaches 127.0.0.1
    site.start()
    try:
        page.goto(site.base + "/console/review")
        assert "/signin" not in page.url
        who = page.locator("article.item", has_text="Are you open on Sunday?")
        action = who.locator("form[action$='/create']").get_attribute("action")
        assert action
        # a page of another site posts the console's form as it is: refused before it reaches it
        forged = (
            f'<form method="post" action="{site.base}{action}"><input name="kind" value="lead"></form>'
            "<script>document.forms[0].submit()</script>"
        )
        page.goto("data:text/html," + quote(forged))
        page.wait_for_url(site.base + action, timeout=60_000)
        assert "this server's own pages" in page.locator("body").inner_text()
        assert home.states() == {"review": 2, "done": 1, "quarantined": 1}
        # the console's own form does it
        page.goto(site.base + "/console/review")
        who = page.locator("article.item", has_text="Are you open on Sunday?")
        who.get_by_label("Create a new").select_option("lead")
        who.get_by_role("button", name="Create and attach").click()
        assert "a new lead made from it: done" in page.get_by_role("status").inner_text()
        assert "who@nowhere.example" in {e for lead in home.dump()["leads"] for e in lead["emails"]}
    finally:
        site.stop()
