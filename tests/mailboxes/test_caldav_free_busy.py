"""CalDAV free/busy (gateway/mailboxes/caldav_freebusy.py) against a real Radicale from PyPI,
started here (unprivileged, 127.0.0.1, a free port, htpasswd users): events PUT into a
calendar come back as busy periods of a free-busy-query REPORT (RFC 4791 section 7.10) — a
transparent one not, a recurring one per occurrence, a tentative one as tentative — and, through
`CalDavCalendars` and the same `ask` as `crm-gateway freebusy`, a calendar whose credentials
are wrong or that does not exist is that address's error, in words, beside the answered one."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.admin.freebusy import ask
from gateway.mailboxes.caldav_freebusy import CalDavCalendars, CalendarAccess, busy_blocks, parse_vfreebusy
from gateway.mailboxes.schedule import BusyBlock, FreeBusy
from tests.waiting import wait_for

USERS = {"ann": "ann-secret", "bob": "bob-secret"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[str]:
    """A Radicale server's base URL; its users ann and bob (htpasswd, plain)."""
    port = _free_port()
    (tmp_path / "users").write_text("".join(f"{u}:{p}\n" for u, p in USERS.items()))
    (tmp_path / "radicale.conf").write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {tmp_path / 'users'}\nhtpasswd_encryption = plain\n"
        f"[storage]\nfilesystem_folder = {tmp_path / 'collections'}\n"
        "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
    )
    log = (tmp_path / "radicale.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(tmp_path / "radicale.conf")], stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_for(lambda: proc.poll() is None and httpx.get(base + "/", timeout=10).status_code < 500, timeout=60)
        assert ready, (tmp_path / "radicale.log").read_text()
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _event(uid: str, start: str, end: str, extra: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//crm-gateway tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{uid}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _calendar(base: str, user: str, events: list[str]) -> str:
    """MKCALENDAR /USER/calendar/ and PUT each event into it; the calendar's URL."""
    url = f"{base}/{user}/calendar/"
    auth = (user, USERS[user])
    with httpx.Client(auth=auth, timeout=30) as c:
        made = c.request("MKCALENDAR", url)
        assert made.status_code == 201, made.text
        for n, text in enumerate(events):
            put = c.put(f"{url}e{n}.ics", content=text.encode(), headers={"Content-Type": "text/calendar"})
            assert put.status_code == 201, put.text
    return url


def _utc(hour: int, minute: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def _fill(radicale: str) -> str:
    return _calendar(
        radicale,
        "ann",
        [
            _event("busy", "20261207T090000Z", "20261207T100000Z"),
            _event("maybe", "20261207T120000Z", "20261207T123000Z", "STATUS:TENTATIVE\r\n"),
            _event("transparent", "20261207T130000Z", "20261207T140000Z", "TRANSP:TRANSPARENT\r\n"),
            _event("daily", "20261206T150000Z", "20261206T160000Z", "RRULE:FREQ=DAILY;COUNT=3\r\n"),
            _event("tomorrow", "20261208T090000Z", "20261208T100000Z"),
            _event("early", "20261207T060000Z", "20261207T083000Z"),  # begins before the window
        ],
    )


def test_the_busy_periods_of_a_radicale_calendar(radicale: str) -> None:
    url = _fill(radicale)
    blocks = busy_blocks(CalendarAccess(url, "ann", USERS["ann"]), _utc(8), _utc(17))
    assert blocks == (
        BusyBlock(_utc(8), _utc(8, 30), FreeBusy.BUSY),  # cut to the window
        BusyBlock(_utc(9), _utc(10), FreeBusy.BUSY),
        BusyBlock(_utc(12), _utc(12, 30), FreeBusy.TENTATIVE),
        BusyBlock(_utc(15), _utc(16), FreeBusy.BUSY),  # today's occurrence of the daily event
    )


def test_caldav_calendars_answer_through_ask_and_say_why_not(radicale: str) -> None:
    url = _fill(radicale)
    _calendar(radicale, "bob", [])
    calendars: dict[str, Any] = {
        "ann@example.org": CalendarAccess(url, "ann", USERS["ann"]),
        "bob@example.org": CalendarAccess(f"{radicale}/bob/calendar/", "bob", "wrong"),
        "cy@example.org": CalendarAccess(f"{radicale}/ann/nothing-here/", "ann", USERS["ann"]),
    }
    dav = CalDavCalendars("dav", calendars)
    report = ask([dav], ["ann@example.org", "bob@example.org", "cy@example.org", "dee@example.org"], _utc(8), _utc(12), 60)
    ann, bob, cy, dee = report.schedules
    assert ann.source == "dav" and [b.status for b in ann.blocks] == [FreeBusy.BUSY, FreeBusy.BUSY]
    assert ann.view(60) == "2200"  # 8-9 busy (early, till 8:30), 9-10 busy, then free till the end at 12
    assert "refused the free/busy of bob (401)" in bob.error
    assert "no calendar at" in cy.error and "(404)" in cy.error
    assert dee.error.startswith("no configured source reaches dee@example.org")
    assert report.free == ((_utc(8, 30), _utc(9)), (_utc(10), _utc(12)))
    assert not report.complete


def test_the_rfc_4791_example_answer_with_durations() -> None:
    """The VFREEBUSY of RFC 4791 section 7.10.1: periods as start/duration, FBTYPE per line."""
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp.//CalDAV Server//EN\r\nBEGIN:VFREEBUSY\r\n"
        "DTSTAMP:20050125T090000Z\r\nDTSTART:20060104T140000Z\r\nDTEND:20060105T220000Z\r\n"
        "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20060104T150000Z/PT1H\r\nFREEBUSY:20060104T190000Z/PT1H\r\n"
        "FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20060105T170000Z/20060105T180000Z\r\n"
        "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
    )
    jan4 = datetime(2006, 1, 4, tzinfo=UTC)
    assert parse_vfreebusy(text) == [
        BusyBlock(jan4.replace(hour=15), jan4.replace(hour=16), FreeBusy.TENTATIVE),
        BusyBlock(jan4.replace(hour=19), jan4.replace(hour=20), FreeBusy.BUSY),
        BusyBlock(jan4.replace(day=5, hour=17), jan4.replace(day=5, hour=18), FreeBusy.OOF),
    ]


def test_credentials_in_a_calendar_url_are_not_shown(radicale: str) -> None:
    leaky = radicale.replace("http://", "http://ann:hunter2@") + "/nobody/calendar/"
    report = ask([CalDavCalendars("dav", {"ann@example.org": CalendarAccess(leaky)})], ["ann@example.org"], _utc(8), _utc(9))
    (only,) = report.schedules
    assert only.error and "hunter2" not in only.error and "hunter2" not in report.text() and "ann:***@" in only.error
