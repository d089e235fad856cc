"""The "Sync conflicts" page in a browser: a user finds their contact's conflict with both
values, keeps the CRM's with the keyboard alone, and the next round of the contact sync puts
it on both sides; the other user's conflict is not on their page."""

from __future__ import annotations

from pathlib import Path

from tests.pimsync import conftest as sync_fixtures
from tests.pimsync.conflicts import listed, sync, title_conflict
from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World
from tests.web.console.browser import Person, Site, sign_in

# the Radicale the contact sync's tests start, and a fresh pair of its users
radicale = sync_fixtures.radicale
users = sync_fixtures.users


def test_a_user_keeps_the_crm_value_of_a_conflict_and_the_next_round_applies_it(
    tmp_path: Path,
    radicale: Radicale,
    users: tuple[str, str],
    page,
) -> None:
    w = World(tmp_path, radicale, *users)
    made = title_conflict(w, w.alice, "browser")
    title_conflict(w, w.bob, "elsewhere")
    alice = Person(w.alice, "user", (w.owner(w.alice),))
    site = Site(w.home, people=(alice,))
    site.start()
    try:
        sign_in(page, site, alice)
        page.goto(site.base + "/console/")
        page.get_by_role("link", name="Sync conflicts").click()
        cards = page.locator("article[data-conflict]")
        assert cards.count() == 1  # bob's is not theirs to see
        card = cards.first
        assert f"contact:{made.crm_id}: title" in card.get_by_role("heading").inner_text()
        assert card.locator("dd.crm").inner_text() == "Reader"
        assert card.locator("dd.card-value").inner_text() == "Professor"
        assert "the mailbox value was kept" in card.locator(".why").inner_text()

        keep = card.get_by_role("button", name="Keep the CRM's value")
        keep.focus()  # reached and pressed with the keyboard, as with Tab
        page.keyboard.press("Enter")
        page.wait_for_url(lambda u: "done=" in u)
        assert "applied at the next round" in page.get_by_role("status").inner_text()
        assert page.locator("article[data-conflict]").count() == 1  # still open until the round applies it

        sync(w)
        page.goto(site.base + "/console/conflicts")
        assert page.locator("article[data-conflict]").count() == 0
        page.get_by_role("link", name="Settled ones too").click()
        assert "applied on both sides" in page.locator("article[data-conflict] .why").inner_text()
        rec = w.contacts.get_contact(made.crm_id)
        assert rec is not None and rec.fields.title == "Reader"
        assert [c.fields.title for _, c in w.cards(w.alice).values()] == ["Reader"]
        assert [c.state for c in listed(w, f"{w.alice}-contacts")] == ["applied"]
    finally:
        site.stop()
        w.close()
