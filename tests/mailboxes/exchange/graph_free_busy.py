"""The Graph double's calendars and its getSchedule: NOT Microsoft Graph, built from Microsoft's
documents: "calendar: getSchedule" (learn.microsoft.com/graph/api/calendar-getschedule, its
request and response example), scheduleInformation, scheduleItem, freeBusyError and
dateTimeTimeZone (graph/api/resources/…), and "Get free/busy schedule of Outlook calendar users
and resources" (graph/outlook-get-free-busy-schedule).

The request's startTime/endTime carry their own timeZone; the double knows "UTC" only and
answers 400 for another (enough for a client that asks in UTC). `Prefer: outlook.timezone`
sets the zone of the answered times (UTC when absent, as the document says; the double writes
only UTC and refuses another zone with 400). Times are written with seven fraction digits, as
Graph does. An address that is no mailbox here gets the error Graph gives for it
(responseCode "5009", "Unable to resolve e-mail address … to an Active Directory object.",
as reported in microsoftgraph/microsoft-graph-docs issue 11225). Calendars.Read or
Calendars.ReadWrite is required (403 ErrorAccessDenied without).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DIGITS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "0", "unknown": "4"}
RANK = ["free", "workingElsewhere", "unknown", "tentative", "busy", "oof"]


@dataclass(frozen=True)
class Item:
    start: datetime  # aware
    end: datetime
    status: str = "busy"  # free | tentative | busy | oof | workingElsewhere | unknown
    subject: str = ""


def _read(value: dict[str, str]) -> datetime:
    return datetime.fromisoformat(value["dateTime"].split(".")[0]).replace(tzinfo=UTC)


def _write(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def answer(calendars: dict[str, list[Item]], body: dict[str, Any], prefer: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON document) for a getSchedule request body."""
    zones = {body["startTime"].get("timeZone"), body["endTime"].get("timeZone")}
    if zones != {"UTC"} or ("outlook.timezone" in prefer and 'outlook.timezone="UTC"' not in prefer):
        return 400, {"error": {"code": "ErrorInvalidTimeZone", "message": "this double knows the UTC time zone only"}}
    start, end = _read(body["startTime"]), _read(body["endTime"])
    step = timedelta(minutes=int(body.get("availabilityViewInterval") or 30))
    value = []
    for address in body.get("schedules", []):
        items = calendars.get(address.lower())
        if items is None:
            value.append(
                {
                    "scheduleId": address,
                    "error": {
                        "message": f"Unable to resolve e-mail address {address} to an Active Directory object.",
                        "responseCode": "5009",
                    },
                }
            )
            continue
        inside = sorted((i for i in items if i.start < end and i.end > start), key=lambda i: i.start)
        view, slot = "", start
        while slot < end:
            here = [i.status for i in inside if i.start < slot + step and i.end > slot]
            view += DIGITS[max(here, key=RANK.index)] if here else "0"
            slot += step
        value.append(
            {
                "scheduleId": address,
                "availabilityView": view,
                "scheduleItems": [
                    {
                        "isPrivate": False,
                        "status": i.status,
                        "subject": i.subject,
                        "location": "",
                        "start": _write(i.start),
                        "end": _write(i.end),
                    }
                    for i in inside
                ],
                "workingHours": {
                    "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                    "startTime": "08:00:00.0000000",
                    "endTime": "17:00:00.0000000",
                    "timeZone": {"name": "UTC"},
                },
            }
        )
    return 200, {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)",
        "value": value,
    }
