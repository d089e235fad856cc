"""Free/busy from a CalDAV calendar: the free-busy-query REPORT (RFC 4791 section 7.10).

A REPORT on the calendar collection with a CALDAV:time-range in UTC; the server answers one
VFREEBUSY (text/calendar) whose FREEBUSY properties list busy periods, each "start/end" or
"start/duration", their FBTYPE BUSY (the default), BUSY-TENTATIVE, BUSY-UNAVAILABLE (read as
out of office, as Exchange exports it) or FREE. Standards servers answer it (Radicale,
Nextcloud, SOGo, Apple's): the calendar owner's or a reader's credentials suffice.

No mailbox kind carries a calendar address yet: `CalDavCalendars` answers `Availability` for
the addresses it is given a calendar of, so a source that gains CalDAV settings builds one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from icalendar import Calendar

from gateway.errors import GatewayError, Permanent, Retryable
from gateway.mailboxes.base import Reach
from gateway.mailboxes.schedule import BusyBlock, FreeBusy, Schedule, clipped, failed

FBTYPE = {
    "BUSY": FreeBusy.BUSY,
    "BUSY-TENTATIVE": FreeBusy.TENTATIVE,
    "BUSY-UNAVAILABLE": FreeBusy.OOF,
    "FREE": FreeBusy.FREE,
}
QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
)


@dataclass(frozen=True)
class CalendarAccess:
    """Where one person's calendar is, and how to read it."""

    url: str  # the calendar collection, e.g. https://dav.example.com/ann/calendar/
    username: str = ""
    password: str = ""
    verify_tls: bool = True
    timeout: float = 60.0


def busy_blocks(cal: CalendarAccess, start: datetime, end: datetime) -> tuple[BusyBlock, ...]:
    """The calendar's busy periods in [start, end). Raises Permanent when the server refuses
    (credentials, no such calendar, no free-busy-query), Retryable when it cannot be reached."""
    body = QUERY.format(start=_utc(start), end=_utc(end))
    headers = {"Depth": "1", "Content-Type": 'application/xml; charset="utf-8"'}
    auth = httpx.BasicAuth(cal.username, cal.password) if cal.username else None
    try:
        with httpx.Client(timeout=cal.timeout, verify=cal.verify_tls) as client:
            r = client.request("REPORT", cal.url, content=body.encode(), headers=headers, auth=auth)
    except httpx.TransportError as exc:
        raise Retryable(f"CalDAV {cal.url} unreachable: {exc}") from None
    if r.status_code in (401, 403):
        raise Permanent(f"CalDAV {cal.url} refused the free/busy of {cal.username or 'an anonymous reader'} ({r.status_code})")
    if r.status_code == 404:
        raise Permanent(f"CalDAV: no calendar at {cal.url} (404)")
    if r.status_code in (405, 501):
        raise Permanent(f"CalDAV {cal.url} does not answer a free-busy-query REPORT ({r.status_code})")
    if r.status_code >= 500:
        raise Retryable(f"CalDAV {cal.url} answered {r.status_code}")
    if r.status_code != 200:
        raise Permanent(f"CalDAV {cal.url} answered the free-busy-query with {r.status_code}")
    return clipped(parse_vfreebusy(r.text), start, end)


def parse_vfreebusy(text: str) -> list[BusyBlock]:
    """The FREEBUSY periods of every VFREEBUSY in an iCalendar text."""
    try:
        calendar = Calendar.from_ical(text)
    except ValueError as exc:
        raise Permanent(f"CalDAV answered something that is not iCalendar: {exc}") from None
    out = []
    for comp in calendar.walk("VFREEBUSY"):
        props = comp.get("FREEBUSY", [])
        # icalendar gives one vPeriod a period, a comma-separated line's each with its line's FBTYPE
        for period in props if isinstance(props, list) else [props]:
            status = FBTYPE.get(str(period.params.get("FBTYPE", "BUSY")).upper(), FreeBusy.BUSY)
            first, second = period.dt
            begin = _aware(first)
            out.append(BusyBlock(begin, _aware(second) if isinstance(second, datetime) else begin + second, status))
    return out


class CalDavCalendars:
    """`Availability` from CalDAV calendars, one per address (gateway.mailboxes.base)."""

    def __init__(self, name: str, calendars: Mapping[str, CalendarAccess]) -> None:
        self.name = name
        self.calendars = {a.strip().lower(): c for a, c in calendars.items()}

    def reach(self, address: str) -> Reach:
        return Reach.OWN if address.strip().lower() in self.calendars else Reach.NONE

    def free_busy(self, addresses: Sequence[str], start: datetime, end: datetime, interval: int) -> list[Schedule]:
        out = []
        for address in addresses:
            cal = self.calendars.get(address.strip().lower())
            if cal is None:
                out.append(failed(address, start, end, "no CalDAV calendar is configured for this address", self.name))
                continue
            try:
                out.append(Schedule(address, start, end, busy_blocks(cal, start, end), self.name))
            except GatewayError as exc:  # this calendar's failure; the others are asked
                out.append(failed(address, start, end, str(exc), self.name))
        return out


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _aware(value: datetime) -> datetime:
    """A period's time; a floating one (no zone, RFC 5545 forbids it here) is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
