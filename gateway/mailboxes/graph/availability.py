"""Free/busy from Exchange Online through Microsoft Graph: the `graph` source's `Availability`.

"calendar: getSchedule" (learn.microsoft.com/graph/api/calendar-getschedule): POST
/users/{id}/calendar/getSchedule with `schedules` (the addresses), `startTime` and `endTime`
as dateTimeTimeZone in UTC and `availabilityViewInterval`, and `Prefer: outlook.timezone="UTC"`
so the scheduleItems' times come back in UTC too. {id} is one of the source's own mailboxes:
an app-only token has no /me, and any user of the tenant may ask for the others. The app needs
the Calendars.Read application permission. Each scheduleInformation carries its scheduleId,
its scheduleItems (status, start, end; subject and location are not read: availability, not
content) or an `error` (freeBusyError: responseCode, message), which becomes that address's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.errors import Permanent, Retryable
from gateway.mailboxes.graph.listing import Client
from gateway.mailboxes.schedule import BusyBlock, FreeBusy, Schedule, clipped, failed

BATCH = 20  # addresses per request: well inside what getSchedule takes, one request for a meeting's attendees
PERMISSION = "Calendars.Read"
STATUS = {  # scheduleItem.status (graph/api/resources/scheduleitem, freeBusyStatus)
    "free": FreeBusy.FREE,
    "tentative": FreeBusy.TENTATIVE,
    "busy": FreeBusy.BUSY,
    "oof": FreeBusy.OOF,
    "workingelsewhere": FreeBusy.WORKING_ELSEWHERE,
    "unknown": FreeBusy.UNKNOWN,
}


def free_busy(
    client: Client, source: str, via: str, addresses: Sequence[str], start: datetime, end: datetime, interval: int
) -> list[Schedule]:
    """Each address's free/busy, asked through the calendar of mailbox `via`."""
    out: list[Schedule] = []
    for i in range(0, len(addresses), BATCH):
        out += _batch(client, source, via, addresses[i : i + BATCH], start, end, interval)
    return out


def _batch(
    client: Client, source: str, via: str, addresses: Sequence[str], start: datetime, end: datetime, interval: int
) -> list[Schedule]:
    body = {
        "schedules": list(addresses),
        "startTime": _when(start),
        "endTime": _when(end),
        "availabilityViewInterval": interval,
    }
    r = client.request(
        "POST",
        f"/users/{via}/calendar/getSchedule",
        f"asking the free/busy of {len(addresses)} addresses",
        permission=PERMISSION,
        json=body,
        headers={"Prefer": 'outlook.timezone="UTC"'},
    )
    if r.status_code >= 400:
        kind = Retryable if r.status_code >= 500 else Permanent
        raise kind(f"graph {source}: getSchedule answered {r.status_code} {r.reason_phrase}: {r.text[:200]}")
    try:
        answers = {str(doc.get("scheduleId", "")).lower(): doc for doc in r.json().get("value", [])}
    except (ValueError, AttributeError):
        raise Permanent(f"graph {source}: getSchedule answered something that is not its JSON: {r.text[:200]}") from None
    out = []
    for address in addresses:
        doc = answers.get(address.lower())
        if doc is None:
            out.append(failed(address, start, end, "Microsoft Graph gave no answer for this address", source))
        elif doc.get("error"):
            err = doc["error"]
            out.append(
                failed(address, start, end, f"Microsoft Graph: {err.get('responseCode', '')}: {err.get('message', '')}", source)
            )
        else:
            try:
                blocks = [_block(item) for item in doc.get("scheduleItems") or ()]
            except (KeyError, TypeError, ValueError) as exc:  # an item without its times: that address's error
                out.append(failed(address, start, end, f"Microsoft Graph answered an item without its times ({exc!r})", source))
                continue
            out.append(Schedule(address, start, end, clipped(blocks, start, end), source))
    return out


def _when(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _block(item: dict[str, Any]) -> BusyBlock:
    status = STATUS.get(str(item.get("status", "")).lower(), FreeBusy.BUSY)
    return BusyBlock(_time(item["start"]), _time(item["end"]), status)


def _time(value: dict[str, str]) -> datetime:
    """A dateTimeTimeZone in UTC, as asked with Prefer: outlook.timezone; Graph writes seven
    digits of fractions ("2019-03-15T12:00:00.0000000"), more than Python reads."""
    text = value["dateTime"].split(".", 1)[0]
    if value.get("timeZone", "UTC") not in ("UTC", "Etc/UTC"):
        raise Permanent(f"Microsoft Graph answered a time in {value.get('timeZone')!r}, not in UTC as asked")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
