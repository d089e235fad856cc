"""What the console shows whom, and that nothing a hostile mail carries runs in it."""

from __future__ import annotations

from tests.mail import make_mail
from tests.web.console.browser import ADMIN, Person, Site, Watch, sign_in
from tests.web.console.seeds import set_config

ME = Person("mel", "user", ("me@example.com",))

HOSTILE_SUBJECT = '<script>alert("subject")</script><img src=x onerror=alert("subject-img")>'
HOSTILE_NAME = "<img src=x onerror=alert(1)> Mallory"
HOSTILE_HTML = """<html><body>
<p>Hello <b>there</b></p>
<script>alert("body")</script>
<img src="x" onerror="alert('body-img')">
<a id="js" href="javascript:alert('link')">click me</a>
<iframe src="javascript:alert('frame')"></iframe>
<svg onload="alert('svg')"></svg>
</body></html>"""


def test_a_user_sees_only_the_items_of_their_own_mailbox(home, page) -> None:
    cfg_sources = [
        *__import__("yaml").safe_load(home.config_path.read_text())["sources"],
        {
            "name": "others",
            "type": "maildir",
            "path": "var/mail2",
            "layout": "fs",
            "owner": ["bob@example.com"],
            "crm_user": "bob@example.com",
            "folders": ["CRM sync"],
        },
    ]
    for sub in ("new", "cur", "tmp"):
        (home.root / "var" / "mail2" / "CRM sync" / sub).mkdir(parents=True, exist_ok=True)
    set_config(home, sources=cfg_sources)
    home.drop("CRM sync", make_mail(sender="Mine <mine@nowhere.example>", subject="For me"))
    theirs = home.root / "var" / "mail2" / "CRM sync" / "new" / "1700000999.theirs.host"
    theirs.write_bytes(make_mail(sender="Theirs <theirs@nowhere.example>", subject="For Bob"))
    assert home.run_once() == {"review": 2}
    led = home.ledger()
    try:
        (bobs,) = [r.id for r in led.messages_in(["review"]) if r.subject == "For Bob"]
    finally:
        led.close()

    site = Site(home, people=(ADMIN, ME))
    site.start()
    try:
        sign_in(page, site, ME)
        page.goto(site.base + "/console/review")
        assert page.locator("article.item h2").all_inner_texts() == ["For me"]
        page.goto(site.base + "/console/")
        mailboxes = page.locator("article.card h3").all_inner_texts()
        assert [m.split()[0] for m in mailboxes] == ["me@example.com"]
        answer = page.goto(f"{site.base}/console/messages/{bobs}")
        assert answer is not None and answer.status == 403
        assert page.get_by_role("heading", name="Not one of your messages").is_visible()
        assert "in a mailbox you do not own" in page.get_by_role("alert").inner_text()
        # a decision on an item they may not see is refused in words, and changes nothing
        page.goto(site.base + "/console/review")
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
        refused = page.request.post(f"{site.base}/console/review/{bobs}/create", form={"kind": "lead", "csrf_token": csrf})
        assert "Not done: message" in refused.text() and "in a mailbox you do not own" in refused.text()
        assert home.states() == {"review": 2}
        # without the form's token, a write is refused before it reaches the console
        stale = page.request.post(f"{site.base}/console/review/{bobs}/create", form={"kind": "lead"})
        assert stale.status == 403 and "stale" in stale.text()
        assert home.states() == {"review": 2}

        page.get_by_role("button", name="Sign out").click()
        assert "/signin" in page.url
        sign_in(page, site, ADMIN)
        page.goto(site.base + "/console/review")
        assert sorted(page.locator("article.item h2").all_inner_texts()) == ["For Bob", "For me"]
    finally:
        site.stop()


def test_a_hostile_mail_runs_nothing_on_the_review_and_message_pages(site: Site, page) -> None:
    site.home.drop(
        "CRM sync",
        make_mail(sender=f'"{HOSTILE_NAME}" <mallory@evil.example>', subject=HOSTILE_SUBJECT, body="plain", html=HOSTILE_HTML),
    )
    assert site.home.run_once() == {"review": 1}
    site.start()
    watch = Watch()
    watch.attach(page)
    sign_in(page, site, ADMIN)

    page.goto(site.base + "/console/review")
    item = page.locator("article.item")
    assert HOSTILE_SUBJECT in item.locator("h2").inner_text()  # shown as text, not run
    item.get_by_role("link").first.click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", level=1).inner_text() == HOSTILE_SUBJECT
    assert "Mallory" in page.locator("dd.from").inner_text() and "onerror" in page.locator("dd.from").inner_text()

    frame = page.frame_locator("iframe.body")
    assert frame.get_by_text("Hello").is_visible()
    assert frame.locator("script").count() == 0 and frame.locator("[onerror], [onload]").count() == 0
    href = frame.locator("a", has_text="click me").get_attribute("href")
    assert href is None or not href.lower().startswith("javascript")
    assert page.locator("iframe.body").get_attribute("sandbox") == ""
    frame.locator("a", has_text="click me").click()
    page.wait_for_timeout(500)  # let anything the click could start happen before looking
    assert watch.dialogs == [], watch.dialogs
    # what may be said: a blocked resource (CSP) or the mail's relative `src=x` not found; no
    # error thrown by a script, since none ran
    said = [e for e in watch.errors if "Content Security Policy" not in e and not e.startswith("Failed to load resource")]
    assert said == [], watch.errors
