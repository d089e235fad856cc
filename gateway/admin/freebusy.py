"""`freebusy`: when people are free, from their calendars, so a CRM can offer a meeting time.

Each address is answered by one configured source that has the `Availability` capability
(gateway.mailboxes.base; EWS and Graph): the source whose mailbox it is (its owner, its CRM
user, on its roster) before one that only shares its organisation (a domain of its mailboxes),
in the config's order. One request per source for all its addresses. An address no source
answers for, or that its server could not answer for, is reported in words beside the others;
a source that fails (unreachable, refused) fails its own addresses only. The CLI
(`crm-gateway freebusy`) and the API (`GET /api/v1/freebusy`) both call `ask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from gateway import logs
from gateway.errors import GatewayError, Permanent
from gateway.mailboxes.base import Availability, Reach
from gateway.mailboxes.schedule import Schedule, common_free, failed

MAX_ADDRESSES = 100
MAX_SPAN = timedelta(days=42)  # the longest window GetUserAvailability accepts (getSchedule: 62 days)
INTERVAL_RANGE = (5, 1440)  # minutes, as both EWS and Graph take them


@dataclass(frozen=True)
class FreeBusyReport:
    start: datetime  # in the asker's zone: the times below are shown in it
    end: datetime
    interval: int
    schedules: tuple[Schedule, ...]
    free: tuple[tuple[datetime, datetime], ...]  # when every answered address is free

    @property
    def complete(self) -> bool:
        """Every address was answered."""
        return all(s.answered for s in self.schedules)

    @property
    def zone(self) -> tzinfo | None:
        return self.start.tzinfo

    def _iso(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).isoformat()

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self._iso(self.start),
            "to": self._iso(self.end),
            "interval": self.interval,
            "complete": self.complete,
            "schedules": [
                {
                    "address": s.address,
                    "source": s.source or None,
                    "answered": s.answered,
                    "error": s.error or None,
                    "busy": [{"start": self._iso(b.start), "end": self._iso(b.end), "status": b.status.value} for b in s.blocks],
                    "view": s.view(self.interval) if s.answered else None,
                }
                for s in self.schedules
            ],
            "free": [{"start": self._iso(a), "end": self._iso(b)} for a, b in self.free],
        }

    def text(self) -> str:
        offset = self.start.strftime("%z")
        lines = [
            f"free/busy from {self._when(self.start)} to {self._when(self.end)} (UTC{offset[:3]}:{offset[3:]}), "
            f"view per {self.interval} minutes",
        ]
        for s in self.schedules:
            lines.append("")
            if not s.answered:
                lines.append(f"{s.address}: not answered: {s.error}")
                continue
            lines.append(f"{s.address} (from {s.source})")
            lines += [f"  {self._span(b.start, b.end)}  {b.status.value}" for b in s.blocks] or ["  free the whole time"]
        answered = [s.address for s in self.schedules if s.answered]
        lines.append("")
        if not answered:
            lines.append("no address was answered: no common free time to show")
        else:
            lines.append(f"free for all of {', '.join(answered)}:")
            lines += [f"  {self._span(a, b)}" for a, b in self.free] or ["  no common free time"]
        return "\n".join(lines)

    def _when(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def _span(self, a: datetime, b: datetime) -> str:
        a, b = a.astimezone(self.zone), b.astimezone(self.zone)
        return f"{self._when(a)}-{b.strftime('%H:%M') if b.date() == a.date() else self._when(b)}"


class Gateway(Protocol):
    """What `answerers` uses of the gateway (gateway.runtime.gateway.Gateway)."""

    @property
    def sources(self) -> Sequence[object]: ...


def answerers(gw: Gateway) -> list[object]:
    """What may answer for an address, in the order asked: the configured sources (those
    without the Availability capability are passed over by `ask`). CalDAV calendars
    (gateway.mailboxes.caldav_freebusy.CalDavCalendars) join here once the config names them."""
    return list(gw.sources)


def ask(
    sources: Sequence[object], addresses: Sequence[str], start: datetime, end: datetime, interval: int = 30
) -> FreeBusyReport:
    """The free/busy of `addresses` over [start, end) (aware times; the report shows them in
    `start`'s zone). Raises Permanent for a question that cannot be asked (no address, end
    before start, a window too long, an interval out of range)."""
    wanted = _addresses(addresses)
    _check_window(start, end, interval)
    able = [s for s in sources if isinstance(s, Availability)]
    answers: dict[str, Schedule] = {}
    plan: dict[int, list[str]] = {}
    for address in wanted:
        picked = _pick(able, address)
        if picked is None:
            answers[address] = failed(address, start, end, _nobody(address, able))
        else:
            plan.setdefault(picked, []).append(address)
    for index, group in plan.items():
        src = able[index]
        try:
            for schedule in src.free_busy(group, start, end, interval):
                answers[schedule.address.lower()] = schedule
        except GatewayError as exc:  # this source's failure is its addresses'; the others stand
            name = str(getattr(src, "name", ""))
            answers.update({a: failed(a, start, end, f"{name}: {exc}", name) for a in group})
    schedules = tuple(_said(answers.get(a) or failed(a, start, end, "no answer came for this address")) for a in wanted)
    return FreeBusyReport(start, end, interval, schedules, tuple(common_free(schedules, start, end)))


def _said(schedule: Schedule) -> Schedule:
    """A server's words may quote a URL with its credentials (a CalDAV calendar's): masked."""
    return replace(schedule, error=logs.redact_urls(schedule.error)) if schedule.error else schedule


def _addresses(addresses: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(a.strip().lower() for a in addresses if a.strip()))
    if not wanted:
        raise Permanent("give at least one address")
    if len(wanted) > MAX_ADDRESSES:
        raise Permanent(f"at most {MAX_ADDRESSES} addresses at once (got {len(wanted)})")
    bad = [a for a in wanted if a.count("@") != 1 or a.startswith("@") or a.endswith("@")]
    if bad:
        raise Permanent(f"not a mail address: {', '.join(bad)}")
    return wanted


def _check_window(start: datetime, end: datetime, interval: int) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Permanent("the times need a zone (an offset such as +01:00, or Z)")
    if end <= start:
        raise Permanent(f"the end ({end.isoformat()}) must come after the start ({start.isoformat()})")
    if end - start > MAX_SPAN:
        raise Permanent(f"at most {MAX_SPAN.days} days at once (Exchange answers no longer window)")
    low, high = INTERVAL_RANGE
    if not low <= interval <= high:
        raise Permanent(f"the interval is {low} to {high} minutes (got {interval})")


def _pick(able: Sequence[Availability], address: str) -> int | None:
    """The index of the source to ask: its own mailbox first, then its organisation's."""
    reaches = []
    for i, src in enumerate(able):
        try:
            reaches.append((i, src.reach(address)))
        except GatewayError:  # a roster that cannot be read: that source does not answer
            continue
    for want in (Reach.OWN, Reach.ORGANISATION):
        for i, got in reaches:
            if got is want:
                return i
    return None


def _nobody(address: str, able: Sequence[Availability]) -> str:
    if not able:
        return "no configured source reads calendars (EWS and Microsoft Graph sources do)"
    names = ", ".join(str(getattr(s, "name", "?")) for s in able)
    return (
        f"no configured source reaches {address} or its domain {address.rpartition('@')[2]} "
        f"(the sources that read calendars: {names})"
    )
