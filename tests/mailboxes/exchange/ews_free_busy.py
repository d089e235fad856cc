"""The EWS double's calendars and its GetUserAvailability: NOT Exchange, built from Microsoft's
documents for the operation (learn.microsoft.com/exchange/client-developer/web-service-reference/
getuseravailability-operation, its request and response examples; …/getuseravailabilityrequest,
…/timezone-availability, …/freebusyviewoptions, …/timewindow, …/mailboxdataarray,
…/freebusyresponsearray, …/freebusyview, …/calendareventarray, …/calendarevent, …/busytype;
and the example response of [MS-OXWAVLS] section 4.2, whose event times carry no offset).

The request's TimeZone gives the zone of the TimeWindow and of the answered event times, which
carry no offset; the double applies its Bias (and only that: no daylight-saving transitions). A
StartTime that does carry an offset (exchangelib writes "Z") is read with it. Each MailboxData
gets one FreeBusyResponse, in order: the calendar events overlapping the window (StartTime,
EndTime, BusyType; CalendarEventDetails only for the Detailed views), or, for an address that
is no mailbox here, ResponseClass Error with ErrorMailRecipientNotFound, as Exchange answers
"Unable to resolve e-mail address … to an Active Directory object."
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"


@dataclass(frozen=True)
class Event:
    start: datetime  # aware
    end: datetime
    busy_type: str = "Busy"  # Free | Tentative | Busy | OOF | WorkingElsewhere | NoData
    subject: str = ""


def _t(tag: str) -> str:
    return f"{{{T}}}{tag}"


def _read_time(text: str, bias: timedelta) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    return (moment + bias).replace(tzinfo=UTC)  # local = UTC - bias, as the Bias is defined


def _local(moment: datetime, bias: timedelta) -> str:
    return (moment.astimezone(UTC) - bias).replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S")


def answer(calendars: dict[str, list[Event]], el: ET.Element) -> str:
    """The GetUserAvailabilityResponse body for the request element `el`."""
    bias = timedelta(minutes=int(el.findtext(f"{_t('TimeZone')}/{_t('Bias')}") or 0))
    opts = el.find(_t("FreeBusyViewOptions"))
    assert opts is not None, "FreeBusyViewOptions is required by the schema"
    start = _read_time(opts.findtext(f"{_t('TimeWindow')}/{_t('StartTime')}") or "", bias)
    end = _read_time(opts.findtext(f"{_t('TimeWindow')}/{_t('EndTime')}") or "", bias)
    view = opts.findtext(_t("RequestedView")) or "FreeBusy"
    out = []
    for data in el.iter(_t("MailboxData")):
        address = (data.findtext(f"{_t('Email')}/{_t('Address')}") or "").strip().lower()
        if address not in calendars:
            out.append(
                '<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Error"><m:MessageText>'
                f"Unable to resolve e-mail address &lt;&gt;;SMTP:{escape(address)} to an Active Directory object."
                "</m:MessageText><m:ResponseCode>ErrorMailRecipientNotFound</m:ResponseCode>"
                "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:ResponseMessage>"
                "<m:FreeBusyView><t:FreeBusyViewType>None</t:FreeBusyViewType></m:FreeBusyView></m:FreeBusyResponse>"
            )
            continue
        events = "".join(
            f"<t:CalendarEvent><t:StartTime>{_local(e.start, bias)}</t:StartTime><t:EndTime>{_local(e.end, bias)}</t:EndTime>"
            f"<t:BusyType>{e.busy_type}</t:BusyType>"
            + (
                f"<t:CalendarEventDetails><t:Subject>{escape(e.subject)}</t:Subject></t:CalendarEventDetails>"
                if "Detailed" in view
                else ""
            )
            + "</t:CalendarEvent>"
            for e in sorted(calendars[address], key=lambda e: e.start)
            if e.start < end and e.end > start
        )
        out.append(
            '<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
            f"</m:ResponseMessage><m:FreeBusyView><t:FreeBusyViewType>{view}</t:FreeBusyViewType>"
            f"<t:CalendarEventArray>{events}</t:CalendarEventArray></m:FreeBusyView></m:FreeBusyResponse>"
        )
    return f"<m:GetUserAvailabilityResponse><m:FreeBusyResponseArray>{''.join(out)}</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>"
