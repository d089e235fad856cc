"""Settling the contact sync's conflicts through the API and the console (as an admin and as
each book's user), the choice applied by the next round on both sides, and the CLI's
`pimsync conflicts --resolve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pimsync.conflicts import PASSWORD, listed, sync, title_conflict, with_people
from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World
from tests.web.fixtures import sign_in, web


@pytest.fixture
def world(tmp_path: Path, radicale: Radicale, users: tuple[str, str]) -> Iterator[World]:
    w = World(tmp_path, radicale, *users)
    with_people(w)
    yield w
    w.close()


def _title(w: World, user: str, crm_id: str) -> tuple[str, str]:
    rec = w.contacts.get_contact(crm_id)
    assert rec is not None
    (card,) = [c for _, c in w.cards(user).values() if c.fields.last_name == rec.fields.last_name]
    return rec.fields.title, card.fields.title


def test_a_user_sees_and_settles_their_own_conflicts_and_the_next_round_applies_the_choice(world: World) -> None:
    mine = title_conflict(world, world.alice, "mine")
    theirs = title_conflict(world, world.bob, "theirs")
    assert _title(world, world.alice, mine.crm_id) == ("Professor", "Professor")  # the newer change won

    with web(world.home) as client:
        sign_in(client, "root", PASSWORD)
        page1 = client.get("/api/v1/pimsync/conflicts").json()
        assert page1["total"] == 2
        assert {c["book"] for c in page1["conflicts"]} == {f"{world.alice}-contacts", f"{world.bob}-contacts"}
        client.post("/signout", data={"csrf_token": client.get("/api/v1/me").json()["csrf_token"]})

        token = sign_in(client, world.alice, PASSWORD)
        books = client.get("/api/v1/status").json()["pimsync"]  # their own book only, with its open conflict
        assert [(b["book"], b["conflicts_open"]) for b in books] == [(f"{world.alice}-contacts", 1)]
        overview = client.get("/console/").text
        assert f'data-book="{world.alice}-contacts"' in overview and f'data-book="{world.bob}-contacts"' not in overview
        page1 = client.get("/api/v1/pimsync/conflicts").json()
        assert page1["total"] == 1, page1
        (c,) = page1["conflicts"]
        assert (c["record"], c["field"], c["crm"], c["card"], c["winner"], c["state"]) == (
            f"contact:{mine.crm_id}",
            "title",
            "Reader",
            "Professor",
            "card",
            "open",
        )
        bobs = listed(world, f"{world.bob}-contacts")[0].id
        refused = client.post(f"/api/v1/pimsync/conflicts/{bobs}/resolve", json={"keep": "crm"}, headers={"X-CSRF-Token": token})
        assert refused.status_code == 404, refused.text
        bad = client.post(f"/api/v1/pimsync/conflicts/{c['id']}/resolve", json={"keep": "both"}, headers={"X-CSRF-Token": token})
        assert bad.status_code == 400 and "crm" in bad.json()["error"]

        done = client.post(f"/api/v1/pimsync/conflicts/{c['id']}/resolve", json={"keep": "crm"}, headers={"X-CSRF-Token": token})
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["kept"], done.json()["resolved_by"]) == ("chosen", "crm", world.alice)

        # the console: the user's page lists theirs only, with both values; another's is refused in words
        page = client.get("/console/conflicts?state=all")
        assert page.status_code == 200
        assert (
            '<dd class="crm">Reader</dd>' in page.text
            and '<dd class="card-value">Professor</dd>' in page.text
            and f"contact:{theirs.crm_id}" not in page.text
        )
        answer = client.post(
            f"/console/conflicts/{bobs}/resolve", data={"csrf_token": token, "keep": "crm"}, follow_redirects=False
        )
        assert answer.status_code == 303 and "no+sync+conflict" in answer.headers["location"]

    sync(world)  # the next round: the CRM's value, chosen, on both sides
    assert _title(world, world.alice, mine.crm_id) == ("Reader", "Reader")
    assert [x.state for x in listed(world) if x.id == c["id"]] == ["applied"]
    sync(world)  # and it stays so, no new conflict
    assert _title(world, world.alice, mine.crm_id) == ("Reader", "Reader")
    assert len(listed(world)) == 2

    with web(world.home) as client:
        token = sign_in(client, world.alice, PASSWORD)
        assert client.get("/api/v1/pimsync/conflicts").json()["total"] == 0  # settled
        again = client.post(
            f"/api/v1/pimsync/conflicts/{c['id']}/resolve", json={"keep": "mailbox"}, headers={"X-CSRF-Token": token}
        )
        assert again.status_code == 409, again.text


def test_the_cli_keeps_the_winner_as_seen_and_the_loser_through_the_next_round(world: World) -> None:
    made = title_conflict(world, world.alice, "cli")
    (c,) = listed(world)
    seen = world.home.cli("pimsync", "conflicts", "--resolve", str(c.id), "--keep", "mailbox")
    assert seen.returncode == 0, seen.stderr
    assert f"conflict {c.id} (title): the mailbox value stays, as chosen" in seen.stdout
    shown = world.home.cli("pimsync", "conflicts").stdout
    assert "seen: the mailbox value stays" in shown
    twice = world.home.cli("pimsync", "conflicts", "--resolve", str(c.id), "--keep", "crm")
    assert twice.returncode == 1 and "already settled" in twice.stderr
    sync(world)
    assert _title(world, world.alice, made.crm_id) == ("Professor", "Professor")  # nothing changed

    other = title_conflict(world, world.bob, "cli2")
    c2 = listed(world, f"{world.bob}-contacts")[0]
    kept = world.home.cli("pimsync", "conflicts", "--resolve", str(c2.id), "--keep", "crm")
    assert kept.returncode == 0 and "applied at the next round" in kept.stdout
    sync(world)
    assert _title(world, world.bob, other.crm_id) == ("Reader", "Reader")
