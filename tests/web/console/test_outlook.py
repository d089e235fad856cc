"""The Outlook add-in: its manifest, and its pane in chromium with a stand-in for Office.js
(tests/web/console/office_standin.js) holding the open mail."""

from __future__ import annotations

import urllib.request

from lxml import etree
from playwright.sync_api import expect

from gateway.admin.access import TokenStore
from tests.mail import make_mail
from tests.web.console.browser import ADMIN, Site, sign_in
from tests.web.console.seeds import crm_records, links_of

OFFICE = "{http://schemas.microsoft.com/office/appforoffice/1.1}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def _open_mail(page, site: Site, *, message_id: str, subject: str, sender: tuple[str, str]) -> None:
    from tests.web.console.browser import route_office_js

    mail = {
        "internetMessageId": message_id,
        "subject": subject,
        "from": {"displayName": sender[0], "emailAddress": sender[1]},
        "to": [{"displayName": "Me", "emailAddress": "me@example.com"}],
    }
    route_office_js(page, mail)
    page.goto(site.base + "/outlook/pane.html")


def test_the_manifest_is_a_mail_add_in_naming_the_public_url(site: Site) -> None:
    site.public_url = "https://crm.acme.example/gateway"
    site.start()
    with urllib.request.urlopen(site.base + "/outlook/manifest.xml", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/xml")
        root = etree.fromstring(r.read())  # well-formed, or this raises
    assert root.tag == f"{OFFICE}OfficeApp" and root.get(f"{XSI}type") == "MailApp"
    names = [child.tag.removeprefix(OFFICE) for child in root if isinstance(child.tag, str)]
    # the schema's order of the elements a MailApp must or may have
    assert names[:6] == ["Id", "Version", "ProviderName", "DefaultLocale", "DisplayName", "Description"]
    assert names.index("FormSettings") < names.index("Permissions") < names.index("Rule")
    source = root.find(f"{OFFICE}FormSettings/{OFFICE}Form/{OFFICE}DesktopSettings/{OFFICE}SourceLocation")
    assert source is not None and source.get("DefaultValue") == "https://crm.acme.example/gateway/outlook/pane.html"
    assert root.findtext(f"{OFFICE}AppDomains/{OFFICE}AppDomain") == "https://crm.acme.example/gateway"
    assert root.findtext(f"{OFFICE}Permissions") == "ReadItem"
    urls = [e.get("DefaultValue") for e in root.iter() if e.get("DefaultValue", "").startswith("http")]
    assert urls and all(u.startswith("https://crm.acme.example/gateway/") for u in urls), urls
    # the same gateway, the same add-in Id
    with urllib.request.urlopen(site.base + "/outlook/manifest.xml", timeout=10) as r:
        assert etree.fromstring(r.read()).findtext(f"{OFFICE}Id") == root.findtext(f"{OFFICE}Id")


def test_the_pane_reads_the_open_mail_from_office_js(site: Site, page) -> None:
    site.start()
    sign_in(page, site, ADMIN)
    _open_mail(page, site, message_id="<x1@mail.test>", subject="Chairs again", sender=("Ann Lee", "ann@acme.example"))
    expect(page.locator("[data-subject]")).to_have_text("Chairs again")
    expect(page.locator("[data-from]")).to_have_text("From Ann Lee <ann@acme.example> to me@example.com")
    expect(page.locator("[data-who]")).to_have_text("Signed in as ada")
    csp = page.request.get(site.base + "/outlook/pane.html").headers["content-security-policy"]
    assert "script-src 'self' https://appsforoffice.microsoft.com" in csp


def test_the_pane_shows_the_records_of_a_mail_in_the_crm_and_links_a_new_one(site: Site, page) -> None:
    ids = crm_records(site.home)
    site.home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="Brochure please", message_id="<bob1@mail.test>"))
    # seen by the gateway, on no record: an auto-reply it skipped, and a stranger's mail in review
    site.home.drop(
        "CRM sync",
        make_mail(
            sender="Carl Vance <carl@vance.example>",
            subject="Out of office",
            message_id="<carl1@mail.test>",
            headers={"Auto-Submitted": "auto-replied"},
            body="I am away until Monday.",
        ),
    )
    site.home.drop(
        "CRM sync",
        make_mail(
            sender="Dora <dora@nowhere.example>",
            subject="Met at the fair",
            message_id="<dora1@mail.test>",
            body="Nice to meet you.",
        ),
    )
    assert site.home.run_once() == {"done": 1, "skipped": 1, "review": 1}
    site.start()
    sign_in(page, site, ADMIN)

    _open_mail(page, site, message_id="<bob1@mail.test>", subject="Brochure please", sender=("Bob Ray", "bob@x.org"))
    expect(page.locator("[data-status]")).to_contain_text("In the CRM on 1 record")
    expect(page.locator("[data-records]")).to_contain_text("lead Bob Ray")

    for message_id, subject, sender, before in (
        ("<carl1@mail.test>", "Out of office", ("Carl Vance", "carl@vance.example"), "Not in the CRM yet."),
        ("<dora1@mail.test>", "Met at the fair", ("Dora", "dora@nowhere.example"), "Not in the CRM yet: it waits for review."),
    ):
        page.goto("about:blank")
        _open_mail(page, site, message_id=message_id, subject=subject, sender=sender)
        expect(page.locator("[data-status]")).to_have_text(before)
        page.get_by_label("Search the CRM").fill("Carl")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("button", name="File on contact Carl Vance", exact=False).click()
        expect(page.locator("[data-linked]")).to_contain_text("Filed on contact Carl Vance")
        expect(page.locator("[data-status]")).to_contain_text("In the CRM on 1 record")
        expect(page.locator("[data-records]")).to_contain_text(f"contact Carl Vance (contact:{ids['Carl Vance']})")
        assert links_of(site.home, subject) == [{"kind": "contact", "id": int(ids["Carl Vance"])}]
    # the review was decided; the skipped auto-reply stays skipped, filed on the record now
    assert site.home.states() == {"done": 2, "skipped": 1}


def test_the_pane_without_a_session_offers_to_sign_in_or_an_api_token(site: Site, page) -> None:
    site.home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="Brochure please", message_id="<bob1@mail.test>"))
    assert site.home.run_once() == {"done": 1}
    site.start()
    config = site.home.config()
    token = TokenStore(config.resolve(config.web.tokens_file)).add("outlook", "admin", [])
    _open_mail(page, site, message_id="<bob1@mail.test>", subject="Brochure please", sender=("Bob Ray", "bob@x.org"))
    expect(page.locator("[data-signin]")).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("Sign in to see whether it is in the CRM.")
    assert page.get_by_role("link", name="Sign in to the gateway").get_attribute("href") == "/signin?next=%2Foutlook%2Fpane.html"

    page.get_by_label("Or paste an API token").fill("not-a-token")
    page.get_by_role("button", name="Use the token").click()
    expect(page.locator("[data-token-form]")).to_be_visible()  # refused: asked again
    page.get_by_label("Or paste an API token").fill(token)
    page.get_by_role("button", name="Use the token").click()
    expect(page.locator("[data-who]")).to_have_text("Signed in as outlook (API token)")
    expect(page.locator("[data-status]")).to_contain_text("In the CRM on 1 record")
    expect(page.locator("[data-signin]")).to_be_hidden()
    # kept for the next mail opened in this browser
    _open_mail(page, site, message_id="<bob1@mail.test>", subject="Brochure please", sender=("Bob Ray", "bob@x.org"))
    expect(page.locator("[data-who]")).to_have_text("Signed in as outlook (API token)")


def test_the_pane_files_a_mail_the_gateway_never_handled(site: Site, page) -> None:
    """A mail still in the inbox (no folder the gateway watches): the pane says it is not in
    the CRM, and filing it on a searched record fetches it from the mailbox by its Message-ID."""
    ids = crm_records(site.home)
    inbox = site.home.mail
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    raw = make_mail(sender="Eve Stone <eve@stone.example>", subject="Still in my inbox", message_id="<eve1@mail.test>")
    (inbox / "new" / "1700000099.eve.host").write_bytes(raw)
    assert site.home.run_once() == {}
    site.start()
    sign_in(page, site, ADMIN)
    _open_mail(page, site, message_id="<eve1@mail.test>", subject="Still in my inbox", sender=("Eve Stone", "eve@stone.example"))
    expect(page.locator("[data-status]")).to_have_text(
        "Not in the CRM yet. It is in the mailbox local:me@example.com/INBOX: search a record to file it on."
    )
    page.get_by_label("Search the CRM").fill("Carl")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="File on contact Carl Vance", exact=False).click()
    expect(page.locator("[data-linked]")).to_contain_text("Filed on contact Carl Vance")
    expect(page.locator("[data-status]")).to_contain_text("In the CRM on 1 record")
    expect(page.locator("[data-records]")).to_contain_text(f"contact Carl Vance (contact:{ids['Carl Vance']})")
    assert links_of(site.home, "Still in my inbox") == [{"kind": "contact", "id": int(ids["Carl Vance"])}]
    assert site.home.states() == {"done": 1}

    page.goto("about:blank")
    _open_mail(page, site, message_id="<gone@mail.test>", subject="Elsewhere", sender=("Nobody", "no@where.example"))
    expect(page.locator("[data-status]")).to_have_text(
        "The gateway has not seen this mail, and it is in none of your mailboxes it reaches."
    )
