"""The console in a browser: a person signs in, picks a record for mail in review, makes one,
retries quarantined mail; what they see, then what the CRM and the ledger hold."""

from __future__ import annotations

import re

import pytest

from tests.mail import make_mail
from tests.web.console.browser import ADMIN, Site, sign_in
from tests.web.console.seeds import links_of, seeded, set_config


def test_sign_in_and_see_the_overview(site: Site, page) -> None:
    seeded(site.home)
    site.start()
    page.goto(site.base + "/console/")
    assert "/signin" in page.url  # not signed in: sent to sign in, and back after
    sign_in(page, site, ADMIN)
    page.goto(site.base + "/console/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    card = page.locator("article.card", has_text="me@example.com")
    assert "local" in card.inner_text()
    # `run --once` wrote the status and stopped: the page says it is stale, and why
    assert "This status is stale" in page.locator(".stale").inner_text()
    counts = card.locator(".count").all_inner_texts()
    assert sorted(counts) == ["done 1", "quarantined 1", "review 2"]
    assert page.get_by_role("link", name="2 waiting for review").is_visible()
    headers = page.request.get(site.base + "/console/").headers
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"


def test_resolve_review_by_picking_a_candidate_and_create_from_review(site: Site, page) -> None:
    ids = seeded(site.home)
    site.start()
    sign_in(page, site, ADMIN)
    page.goto(site.base + "/console/review")
    ann = page.locator("article.item", has_text="Quote for 40 chairs")
    assert "ann@acme.example" in ann.locator(".from").inner_text()
    assert ann.get_by_text(f"matched ann@acme.example (contact:{ids['Ann Two']})").is_visible()
    ann.get_by_role("button", name="Attach to contact Ann Two").click()
    assert re.search(r"message \d+ attached to contact:\d+: done", page.get_by_role("status").inner_text())
    assert page.locator("article.item", has_text="Quote for 40 chairs").count() == 0
    assert links_of(site.home, "Quote for 40 chairs") == [{"kind": "contact", "id": int(ids["Ann Two"])}]

    who = page.locator("article.item", has_text="Are you open on Sunday?")
    assert "No record matched who@nowhere.example" in who.inner_text()
    who.get_by_label("Create a new").select_option("lead")
    who.get_by_role("button", name="Create and attach").click()
    assert "a new lead made from it: done" in page.get_by_role("status").inner_text()
    assert "Nothing waits for review." in page.locator("main").inner_text()
    leads = {e for lead in site.home.dump()["leads"] for e in lead["emails"]}
    assert "who@nowhere.example" in leads
    assert site.home.states() == {"done": 3, "quarantined": 1}


def test_a_record_outside_the_candidates_is_refused_in_words(site: Site, page) -> None:
    ids = seeded(site.home)
    site.start()
    sign_in(page, site, ADMIN)
    page.goto(site.base + "/console/review")
    ann = page.locator("article.item", has_text="Quote for 40 chairs")
    # typed, not picked from a search: a typo must not file the mail on a stranger's record
    ann.get_by_label("or its KIND:ID").fill(f"contact:{ids['Carl Vance']}")
    ann.get_by_role("button", name="Attach", exact=True).click()
    assert "is not among the candidates" in page.get_by_role("alert").inner_text()
    assert links_of(site.home, "Quote for 40 chairs") == []


def test_resolve_review_by_searching_another_record(site: Site, page) -> None:
    ids = seeded(site.home)
    site.start()
    sign_in(page, site, ADMIN)
    page.goto(site.base + "/console/review")
    ann = page.locator("article.item", has_text="Quote for 40 chairs")
    ann.get_by_label("Another record").fill("Carl")
    ann.get_by_label("Another record").press("Enter")
    # the results come from the API, after a moment: the click waits for the button
    ann.get_by_role("button", name=re.compile("Attach to contact Carl Vance")).click()
    assert f"attached to contact:{ids['Carl Vance']}: done" in page.get_by_role("status").inner_text()
    assert links_of(site.home, "Quote for 40 chairs") == [{"kind": "contact", "id": int(ids["Carl Vance"])}]


def test_retry_a_quarantined_message(site: Site, page) -> None:
    seeded(site.home)
    site.start()
    sign_in(page, site, ADMIN)
    page.goto(site.base + "/console/quarantine")
    ben = page.locator("article.item", has_text="ben@big.example")
    assert "max_message_size" in ben.locator(".why").inner_text()
    assert "max_message_size" in page.locator(".reasons").inner_text()
    ben.get_by_role("button", name="Retry").click()
    assert re.search(r"message \d+: done", page.get_by_role("status").inner_text())
    assert "Nothing is quarantined." in page.locator("main").inner_text()
    assert [lead["emails"] for lead in site.home.dump()["leads"] if "ben@big.example" in lead["emails"]] == [["ben@big.example"]]
    assert site.home.states()["done"] == 2


def test_the_console_is_usable_on_a_phone_and_by_keyboard(site: Site, chromium) -> None:
    seeded(site.home)
    site.start()
    context = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, site, ADMIN)
        page.goto(site.base + "/console/review")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the review page is {width} px wide on a 375 px screen"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
        for _ in range(40):  # every decision is reachable with Tab
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent").startswith("Attach to contact Ann"):
                break
        else:
            pytest.fail("no candidate button reached with Tab")
        page.keyboard.press("Enter")
        assert "attached to contact" in page.get_by_role("status").inner_text()
    finally:
        context.close()


def test_the_message_page_shows_headers_body_attachments_trace_and_where_it_is_in_the_crm(site: Site, page) -> None:
    site.home.drop(
        "CRM sync",
        make_mail(
            sender="Ann Lee <ann@acme.example>",
            subject="Plans attached",
            html="<p>See the <b>plans</b>.</p>",
            attachments=[("plans.pdf", "application/pdf", b"%PDF-1.4 plans")],
        ),
    )
    site.home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="Brochure please"))
    assert site.home.run_once() == {"review": 1, "done": 1}
    led = site.home.ledger()
    try:
        pks = {r.subject: r.id for r in led.messages_in(["review", "done"])}
    finally:
        led.close()
    site.start()
    sign_in(page, site, ADMIN)

    page.goto(f"{site.base}/console/messages/{pks['Plans attached']}")
    assert page.locator("dd.from").inner_text() == "Ann Lee <ann@acme.example>"
    assert "+0100" in page.locator("dl.headers").inner_text()  # the Date header's own zone
    assert page.frame_locator("iframe.body").get_by_text("plans").first.is_visible()
    assert "plans.pdf · application/pdf · 14 bytes" in page.locator("main").inner_text()
    assert "Not in the CRM yet" in page.locator("main").inner_text()
    assert "CRM sync folder" in page.locator("ol.trace").inner_text()
    csp = page.request.get(f"{site.base}/console/messages/{pks['Plans attached']}").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-src 'none'" in csp

    page.goto(f"{site.base}/console/messages/{pks['Brochure please']}")
    (lead,) = [x for x in site.home.dump()["leads"] if "bob@x.org" in x["emails"]]
    assert f"on lead:{lead['id']}" in page.locator("ul.crm").inner_text()
    assert "The gateway no longer keeps this mail" in page.locator("main").inner_text()

    page.goto(f"{site.base}/console/messages/999")
    assert page.get_by_role("heading", name="No such message").is_visible()


def test_retry_every_quarantined_message_of_one_reason(site: Site, page) -> None:
    set_config(site.home, max_message_size="2KB")
    # of one size, so of one reason ("over max_message_size (N bytes > 2048)…")
    for n, who in enumerate(("Big Ben <ben@big.example>", "Big Bea <bea@big.example>")):
        big = make_mail(
            sender=who, message_id=f"<big{n}@mail.test>", attachments=[("a.bin", "application/octet-stream", b"x" * 5000)]
        )
        site.home.drop("VLeads", big)
    site.home.drop("VLeads", b"", name="zz-empty.1.host")  # unparseable: another reason, left alone
    assert site.home.run_once() == {"quarantined": 3}
    set_config(site.home, max_message_size="10MB")
    site.start()
    sign_in(page, site, ADMIN)
    page.goto(site.base + "/console/quarantine")
    reasons = page.locator(".reasons li")
    assert reasons.count() == 2, reasons.all_inner_texts()
    big = reasons.filter(has_text="max_message_size")
    big.get_by_role("button", name="Retry all 2").click()
    assert re.fullmatch(r"message \d+: done; message \d+: done", page.get_by_role("status").inner_text())
    assert [i.count("unparseable") for i in page.locator("article.item .why").all_inner_texts()] == [1]
    leads = sorted(e for lead in site.home.dump()["leads"] for e in lead["emails"])
    assert leads == ["bea@big.example", "ben@big.example"]
    assert site.home.states() == {"done": 2, "quarantined": 1}
