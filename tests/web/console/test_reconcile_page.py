"""Reconcile on the console: an admin sees a mail delivered while the gateway was down, fixes
it with one click, and the CRM holds it once; a user has no reconcile page."""

from __future__ import annotations

from tests.mail import make_mail
from tests.web.console.browser import ADMIN, Person, Site, sign_in

ME = Person("mel", "user", ("me@example.com",))


def test_an_admin_finds_and_fixes_a_mail_the_gateway_missed(home, page) -> None:
    home.drop("VLeads", make_mail(sender="Seen <seen@seen.example>", subject="seen before"))
    assert home.run_once() == {"done": 1}
    late = make_mail(sender="Late <late@late.example>", subject="came while down", message_id="<late@down.example>")
    home.drop("VLeads", late)  # delivered, never run
    site = Site(home, people=(ADMIN, ME))
    site.start()
    try:
        sign_in(page, site, ADMIN)
        page.goto(site.base + "/console/")
        page.get_by_role("link", name="Reconcile").click()
        assert "Never run." in page.locator("#last").inner_text()

        page.get_by_role("button", name="Reconcile").click()
        report = page.locator("#report")
        assert "Findings" in report.get_by_role("heading", level=2).inner_text()
        assert page.locator('ul.findings[data-kind="unknown"] li').count() == 1
        assert "in the mailbox, unknown to the ledger 1" in page.locator("#last").inner_text()
        assert site.home.states() == {"done": 1}  # looking changed nothing

        page.get_by_label("Fix what is found").check()
        page.get_by_role("button", name="Reconcile").click()
        assert "Reconciled: nothing lost" in page.locator("#report h2").inner_text()
        subjects = sorted(e["subject"] for e in site.home.dump()["emails"])
        assert subjects == ["came while down", "seen before"]  # filed once, nothing twice

        page.get_by_label("Fix what is found").check()
        page.get_by_role("button", name="Reconcile").click()  # again: nothing to do
        assert "Reconciled: nothing lost (after fixing 0)" in page.locator("#report h2").inner_text()
        assert sorted(e["subject"] for e in site.home.dump()["emails"]) == subjects

        page.context.clear_cookies()
        sign_in(page, site, ME)
        page.goto(site.base + "/console/")
        assert page.get_by_role("link", name="Reconcile").count() == 0
        answer = page.goto(site.base + "/console/reconcile")
        assert answer is not None and answer.status == 403
        assert "Only an admin reconciles" in page.locator("main").inner_text()
    finally:
        site.stop()
