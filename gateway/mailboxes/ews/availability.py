"""Free/busy from Exchange Server over EWS: the `ews` source's `Availability`.

One GetUserAvailability request for all the addresses a source is asked about
(learn.microsoft.com/exchange/client-developer/web-service-reference/getuseravailability-operation),
with FreeBusyViewOptions RequestedView "FreeBusy": start, end and BusyType of each calendar
event, no subject or location (availability, not content). The service account asks as itself
(no impersonation header): Exchange shows every mailbox's free/busy to the organisation.

The request's time zone is UTC, sent as a SerializableTimeZone (Bias 0, transitions that
change nothing, as exchangelib writes a zone without daylight saving), so no GetServerTimeZones
round trip is needed and the event times that come back (local to that zone) are UTC.
An address Exchange cannot answer for (ErrorMailRecipientNotFound, no rights) is an error in
its own FreeBusyResponse: it becomes that address's Schedule error, the others are answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib import errors as xerr
from exchangelib.properties import (
    DaylightTime,
    FreeBusyViewOptions,
    MailboxData,
    StandardTime,
    TimeWindow,
    TimeZone,
)
from exchangelib.services import GetUserAvailability

from gateway.mailboxes.ews.session import EwsError, EwsSession
from gateway.mailboxes.schedule import BusyBlock, FreeBusy, Schedule, clipped, failed

UTC_ZONE = TimeZone(
    bias=0,
    standard_time=StandardTime(bias=0, time=dt.time(0), occurrence=1, iso_month=1, weekday=1),
    daylight_time=DaylightTime(bias=0, time=dt.time(0), occurrence=5, iso_month=12, weekday=7),
)
STATUS = {  # BusyType (…/web-service-reference/busytype)
    "Free": FreeBusy.FREE,
    "Tentative": FreeBusy.TENTATIVE,
    "Busy": FreeBusy.BUSY,
    "OOF": FreeBusy.OOF,
    "WorkingElsewhere": FreeBusy.WORKING_ELSEWHERE,
    "NoData": FreeBusy.UNKNOWN,
}


class PerMailbox(GetUserAvailability):
    # an address Exchange cannot answer for is that address's error, not the whole request's
    ERRORS_TO_CATCH_IN_RESPONSE = (xerr.ResponseMessageError,)


def free_busy(
    session: EwsSession, source: str, via: str, addresses: Sequence[str], start: dt.datetime, end: dt.datetime, interval: int
) -> list[Schedule]:
    """Each address's free/busy, asked through the EWS connection of mailbox `via` (one of the
    source's: its Protocol, version and credentials)."""
    protocol = session.account(via).protocol
    utc = EWSTimeZone("UTC")
    window = TimeWindow(
        start=EWSDateTime.from_datetime(start.astimezone(dt.UTC)), end=EWSDateTime.from_datetime(end.astimezone(dt.UTC))
    )
    options = FreeBusyViewOptions(time_window=window, merged_free_busy_interval=interval, requested_view="FreeBusy")
    boxes = [MailboxData(email=a, attendee_type="Required", exclude_conflicts=False) for a in addresses]

    def ask() -> list[Any]:
        return list(
            PerMailbox(protocol=protocol).call(tzinfo=utc, mailbox_data=boxes, timezone=UTC_ZONE, free_busy_view_options=options)
        )

    try:
        views = session.call(ask, f"asking the free/busy of {len(addresses)} addresses")
    except xerr.EWSError as exc:  # a refusal of the whole request (rights, a bad answer): said, not a crash
        raise EwsError(f"Exchange refused GetUserAvailability: {type(exc).__name__}: {exc}") from None
    out = []
    for address, view in zip(addresses, views, strict=False):
        if isinstance(view, Exception):
            out.append(failed(address, start, end, f"Exchange: {type(view).__name__}: {view}", source))
            continue
        blocks = [
            BusyBlock(_aware(e.start), _aware(e.end), STATUS.get(e.busy_type, FreeBusy.BUSY)) for e in view.calendar_events or ()
        ]
        out.append(Schedule(address, start, end, clipped(blocks, start, end), source))
    for address in addresses[len(out) :]:  # fewer answers than asked: said, never guessed free
        out.append(failed(address, start, end, "Exchange gave no answer for this address", source))
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    """EWS sends the event times in the request's zone (UTC here), without an offset."""
    plain = dt.datetime.fromisoformat(value.isoformat())  # a datetime, not exchangelib's subclass
    return plain.replace(tzinfo=dt.UTC) if plain.tzinfo is None else plain.astimezone(dt.UTC)
