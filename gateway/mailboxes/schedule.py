"""Free/busy answers, whatever calendar gave them: typed values and the two views made of them.

A calendar server (EWS GetUserAvailability, Graph getSchedule, a CalDAV free-busy-query) tells
for one address when it is not free: `BusyBlock`s with a `FreeBusy` status. A `Schedule` is
one address's answer over the asked window, or, when it could not be had, the reason in words.
From the blocks come the merged view (one digit per interval, the digits EWS MergedFreeBusy
uses) and the time every answered address is free, so every kind of calendar gives the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class FreeBusy(StrEnum):
    """A block's status; the names are the JSON's."""

    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"  # out of office
    WORKING_ELSEWHERE = "working-elsewhere"
    UNKNOWN = "unknown"  # the server has no data for this time (EWS NoData, Graph unknown)


# One digit per interval in the merged view, as EWS MergedFreeBusy spells them (Graph's
# availabilityView uses the same digits; it writes working elsewhere as 0).
DIGIT = {
    FreeBusy.FREE: "0",
    FreeBusy.TENTATIVE: "1",
    FreeBusy.BUSY: "2",
    FreeBusy.OOF: "3",
    FreeBusy.WORKING_ELSEWHERE: "4",
    FreeBusy.UNKNOWN: "5",
}
# Which status wins where blocks overlap in one interval: the one that keeps a meeting away most.
RANK = {
    FreeBusy.FREE: 0,
    FreeBusy.WORKING_ELSEWHERE: 1,
    FreeBusy.UNKNOWN: 2,
    FreeBusy.TENTATIVE: 3,
    FreeBusy.BUSY: 4,
    FreeBusy.OOF: 5,
}
# What a meeting may be offered over: free time, and time worked from elsewhere (the person
# is at work and reachable). Tentative time is not offered: someone may have accepted.
OPEN = frozenset({FreeBusy.FREE, FreeBusy.WORKING_ELSEWHERE})


@dataclass(frozen=True)
class BusyBlock:
    start: datetime  # aware
    end: datetime
    status: FreeBusy


@dataclass(frozen=True)
class Schedule:
    """One address's free/busy over [start, end): its blocks, or `error` when none came."""

    address: str
    start: datetime
    end: datetime
    blocks: tuple[BusyBlock, ...] = ()
    source: str = ""  # the configured source that answered ("" when none could)
    error: str = ""

    @property
    def answered(self) -> bool:
        return not self.error

    def view(self, interval: int) -> str:
        return merged_view(self.blocks, self.start, self.end, interval)


def failed(address: str, start: datetime, end: datetime, why: str, source: str = "") -> Schedule:
    return Schedule(address, start, end, source=source, error=why)


def clipped(blocks: Iterable[BusyBlock], start: datetime, end: datetime) -> tuple[BusyBlock, ...]:
    """The blocks that fall in [start, end), cut to it, in time order; free blocks dropped
    (free is what is left between them)."""
    out = [
        BusyBlock(max(b.start, start), min(b.end, end), b.status)
        for b in blocks
        if b.status is not FreeBusy.FREE and b.start < end and b.end > start
    ]
    return tuple(sorted(out, key=lambda b: (b.start, b.end, b.status)))


def merged_view(blocks: Sequence[BusyBlock], start: datetime, end: datetime, interval: int) -> str:
    """One digit per `interval` minutes from `start` (the last may be shorter): the strongest
    status of the blocks overlapping it, free where none does."""
    step = timedelta(minutes=interval)
    out = []
    slot = start
    while slot < end:
        nxt = min(slot + step, end)
        here = [b.status for b in blocks if b.start < nxt and b.end > slot]
        out.append(DIGIT[max(here, key=RANK.__getitem__)] if here else DIGIT[FreeBusy.FREE])
        slot = nxt
    return "".join(out)


def common_free(schedules: Sequence[Schedule], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) in which every answered schedule is open (free or working
    elsewhere); the unanswered ones are left out (the caller says so). Nothing answered: []."""
    answered = [s for s in schedules if s.answered]
    if not answered:
        return []
    taken = sorted((b.start, b.end) for s in answered for b in s.blocks if b.status not in OPEN)
    free: list[tuple[datetime, datetime]] = []
    at = start
    for b_start, b_end in taken:
        if b_start > at:
            free.append((at, min(b_start, end)))
        at = max(at, b_end)
        if at >= end:
            break
    if at < end:
        free.append((at, end))
    return [(a, b) for a, b in free if b > a]
