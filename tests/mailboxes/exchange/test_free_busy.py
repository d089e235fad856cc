"""`crm-gateway freebusy` on the `ews` and `graph` sources, against the EWS and Graph doubles
(GetUserAvailability, getSchedule: ews_free_busy.py and graph_free_busy.py name Microsoft's
pages they follow): the source's own mailbox and another of its organisation are answered,
with their busy blocks in the asker's zone and the common free time; an address Exchange does
not know, and one of a domain no source reaches, are reported in words and exit 1; an app
without Calendars.Read is told which permission it lacks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.fixtures import Home
from tests.mailboxes.exchange.ews_double import EwsDouble
from tests.mailboxes.exchange.fixtures import MAILBOX, ews_source, graph_source, home_with
from tests.mailboxes.exchange.graph_double import GraphDouble

BOSS = "boss@example.com"  # not on the source's roster: answered as one of its organisation
GHOST = "ghost@example.com"  # the organisation's domain, but no mailbox there
STRANGER = "someone@elsewhere.example"  # a domain no configured source reaches
WINDOW = ("--from", "2026-12-07T09:00:00+01:00", "--to", "2026-12-07T17:00:00+01:00")


def _utc(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, tzinfo=UTC)


def _calendar(add: Any, busy: str, tentative: str, oof: str) -> None:
    """The same day in both doubles (UTC): sales busy 9-10 and tentative 12-12:30, the boss
    out of office 8-9:30 and busy 14-15, and an event of the boss outside the window."""
    add(MAILBOX, _utc(9), _utc(10), busy, "Quote review")
    add(MAILBOX, _utc(12), _utc(12, 30), tentative, "Lunch?")
    add(BOSS, _utc(7), _utc(8, 30), oof, "Dentist")
    add(BOSS, _utc(14), _utc(15), busy, "Board")
    add(BOSS, datetime(2026, 12, 8, 9, tzinfo=UTC), datetime(2026, 12, 8, 10, tzinfo=UTC), busy, "Tomorrow")


def _json(home: Home, *addresses: str) -> tuple[int, dict[str, Any]]:
    res = home.cli("freebusy", *addresses, *WINDOW, "--json")
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def _expect_answers(home: Home, source: str) -> None:
    res = home.cli("freebusy", MAILBOX, BOSS, *WINDOW, "--interval", "60")
    assert res.returncode == 0, res.stdout + res.stderr
    # the times in the asker's zone (+01:00), each address's blocks, then the common free time
    assert res.stdout.splitlines() == [
        "free/busy from 2026-12-07 09:00 to 2026-12-07 17:00 (UTC+01:00), view per 60 minutes",
        "",
        f"sales@example.com (from {source})",
        "  2026-12-07 10:00-11:00  busy",
        "  2026-12-07 13:00-13:30  tentative",
        "",
        f"boss@example.com (from {source})",
        "  2026-12-07 09:00-09:30  oof",
        "  2026-12-07 15:00-16:00  busy",
        "",
        "free for all of sales@example.com, boss@example.com:",
        "  2026-12-07 09:30-10:00",
        "  2026-12-07 11:00-13:00",
        "  2026-12-07 13:30-15:00",
        "  2026-12-07 16:00-17:00",
    ], res.stdout

    code, doc = _json(home, MAILBOX, BOSS, GHOST, STRANGER)
    assert code == 1 and doc["complete"] is False
    by = {s["address"]: s for s in doc["schedules"]}
    assert list(by) == [MAILBOX, BOSS, GHOST, STRANGER]
    assert by[MAILBOX]["busy"] == [
        {"start": "2026-12-07T10:00:00+01:00", "end": "2026-12-07T11:00:00+01:00", "status": "busy"},
        {"start": "2026-12-07T13:00:00+01:00", "end": "2026-12-07T13:30:00+01:00", "status": "tentative"},
    ]
    assert by[MAILBOX]["view"] == "0022000010000000"  # 16 half hours from 09:00 +01:00
    assert by[BOSS]["view"] == "3000000000002200"
    assert by[GHOST]["answered"] is False and by[GHOST]["source"] == source
    assert "ghost@example.com" in by[GHOST]["error"] and "Active Directory" in by[GHOST]["error"]
    assert by[STRANGER]["source"] is None
    assert by[STRANGER]["error"].startswith("no configured source reaches someone@elsewhere.example or its domain")
    # the common free time leaves out who was not answered
    assert doc["free"][0] == {"start": "2026-12-07T09:30:00+01:00", "end": "2026-12-07T10:00:00+01:00"}
    assert len(doc["free"]) == 4


def test_ews_answers_its_mailbox_and_its_organisation(tmp_path, ews: EwsDouble):
    _calendar(ews.add_event, "Busy", "Tentative", "OOF")
    home = home_with(tmp_path, "ews", ews_source(ews))
    _expect_answers(home, "exchange")
    # one GetUserAvailability for the addresses the source answers, not one per address
    assert ews.count("GetUserAvailabilityRequest") == 2


def test_graph_answers_its_mailbox_and_its_organisation(tmp_path, tls):
    d = GraphDouble(tls[1], tls[2], mailboxes=[MAILBOX], roles=("Mail.ReadWrite", "Calendars.Read")).start()
    try:
        _calendar(d.add_event, "busy", "tentative", "oof")
        home = home_with(tmp_path, "graph", graph_source(d, tls[0]))
        _expect_answers(home, "online")
        asked = [r for r in d.requests if r[2].endswith("/calendar/getSchedule")]
        assert len(asked) == 2 and all(r[2] == f"/v1.0/users/{MAILBOX}/calendar/getSchedule" for r in asked)
    finally:
        d.stop()


def test_graph_without_calendar_permission_says_which_it_needs(tmp_path, tls, graph: GraphDouble):
    home = home_with(tmp_path, "graph", graph_source(graph, tls[0]))
    code, doc = _json(home, MAILBOX)
    assert code == 1
    (only,) = doc["schedules"]
    assert only["answered"] is False and "Calendars.Read" in only["error"] and "403" in only["error"]


def test_a_question_that_cannot_be_asked_is_a_user_error(tmp_path, ews: EwsDouble):
    home = home_with(tmp_path, "ews", ews_source(ews))
    backwards = home.cli("freebusy", MAILBOX, "--from", "2026-12-07T10:00:00Z", "--to", "2026-12-07T09:00:00Z")
    assert backwards.returncode == 1 and "must come after the start" in backwards.stderr
    garbled = home.cli("freebusy", MAILBOX, "--from", "monday", "--to", "2026-12-07T09:00:00Z")
    assert garbled.returncode == 1 and "--from: not an ISO 8601" in garbled.stderr
    too_fine = home.cli("freebusy", MAILBOX, *WINDOW, "--interval", "1")
    assert too_fine.returncode == 1 and "5 to 1440 minutes" in too_fine.stderr
    assert ews.count("GetUserAvailabilityRequest") == 0


def test_the_source_whose_mailbox_it_is_answers_and_a_failing_source_fails_only_its_own(tmp_path, ews: EwsDouble):
    """Two sources of one organisation: each address goes to the source holding its mailbox,
    though the other (listed first) could ask for it too; a source that cannot be reached
    fails its own address only; a throttled request is waited out as the server asks."""
    ews.add_mailbox(BOSS)
    ews.allowed.add(BOSS)
    _calendar(ews.add_event, "Busy", "Tentative", "OOF")
    first = ews_source(ews, name="first")
    second = ews_source(ews, name="second", mailboxes=[BOSS], owner=[BOSS], crm_user=BOSS)
    dead = ews_source(ews, name="dead", url="http://127.0.0.1:9/EWS/Exchange.asmx", mailboxes=[STRANGER], owner=[], crm_user=None)
    (tmp_path / "two").mkdir()
    home = Home(tmp_path / "two", extra={"sources": [first, second, dead]})
    ews.throttle(1, 0.5)
    code, doc = _json(home, BOSS, MAILBOX, STRANGER)
    assert code == 1
    by = {s["address"]: s for s in doc["schedules"]}
    assert (by[BOSS]["source"], by[MAILBOX]["source"]) == ("second", "first")
    assert by[BOSS]["answered"] and by[MAILBOX]["answered"]
    assert by[STRANGER]["source"] == "dead" and by[STRANGER]["error"].startswith("dead: EWS unreachable")
    assert len(ews.throttled) == 1 and ews.count("GetUserAvailabilityRequest") == 3  # the busy answer, then one per source


def test_graph_documented_example_gives_the_documented_availability_view(tmp_path, tls):
    """The example of "calendar: getSchedule" (learn.microsoft.com/graph/api/calendar-getschedule):
    adelev and meganb on 2019-03-15, 09:00-18:00 Pacific time (PDT, UTC-7 that day), 60-minute
    slots; their items put into the double in UTC. The merged view the gateway computes from the
    blocks is the availabilityView the document shows: overlapping items take the stronger
    status, an item begun before the window counts from its start."""
    adele, megan = "adelev@contoso.onmicrosoft.com", "meganb@contoso.onmicrosoft.com"
    d = GraphDouble(tls[1], tls[2], mailboxes=[MAILBOX], roles=("Mail.ReadWrite", "Calendars.Read")).start()
    try:

        def pdt(hour: int, minute: int = 0) -> datetime:
            return datetime(2019, 3, 15, hour, minute, tzinfo=timezone(timedelta(hours=-7))).astimezone(UTC)

        d.add_event(adele, pdt(12), pdt(14), "busy", "Let's go for lunch")
        for start, end, status in (
            (pdt(8, 30), pdt(9, 30), "busy"),
            (pdt(12), pdt(14), "busy"),
            (pdt(12), pdt(13), "tentative"),
            (pdt(13), pdt(14), "busy"),
            (pdt(16), pdt(17), "tentative"),
        ):
            d.add_event(megan, start, end, status)
        home = home_with(tmp_path, "graph", graph_source(d, tls[0], mailboxes=[MAILBOX, adele, megan]))
        window = ("--from", "2019-03-15T09:00:00-07:00", "--to", "2019-03-15T18:00:00-07:00", "--interval", "60")
        res = home.cli("freebusy", adele, megan, *window, "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        views = {s["address"]: s["view"] for s in json.loads(res.stdout)["schedules"]}
        assert views == {adele: "000220000", megan: "200220010"}
    finally:
        d.stop()


def test_ews_wrong_credentials_are_said_per_address(tmp_path, ews: EwsDouble):
    home = home_with(tmp_path, "ews", ews_source(ews, password="not-it"))
    code, doc = _json(home, MAILBOX)
    assert code == 1
    (only,) = doc["schedules"]
    assert only["source"] == "exchange" and "wrong credentials for 'svc-crm'" in only["error"] and "401" in only["error"]
