"""A change feed from modification stamps, for CRMs that keep a `write_date` per record and no
change log (Tryton, Odoo): the version is the newest stamp seen, in microseconds since the
epoch.

A CRM stamps a transaction's start (or to the second, Odoo), so records may share a stamp,
and one that commits late may carry a stamp older than one already read. A read therefore
starts `LAG` before the cursor and tells those records again instead of skipping them; the
sync compares each with its snapshot, so a repeat writes nothing. A page is cut after `limit`
records but never inside one stamp, which would skip the rest of that stamp.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

LAG = timedelta(seconds=30)
EPOCH = datetime(1970, 1, 1)


def micros(stamp: datetime) -> int:
    return calendar.timegm(stamp.timetuple()) * 1_000_000 + stamp.microsecond


def read_from(version: int) -> datetime:
    """Where a read for changes after `version` starts: `LAG` before it (the epoch for 0)."""
    return max(EPOCH, EPOCH + timedelta(microseconds=version) - LAG) if version else EPOCH


def page(stamps: dict[int, datetime], version: int, limit: int) -> tuple[list[tuple[int, datetime]], int]:
    """The records to tell (the lag window's again, then the newer ones up to `limit`, whole
    stamps) in stamp order, and the version to ask from next."""
    ordered = sorted(stamps.items(), key=lambda kv: (kv[1], kv[0]))
    newer = [(rid, s) for rid, s in ordered if micros(s) > version]
    if len(newer) > limit:
        cut = newer[max(limit, 1) - 1][1]
        newer = [(rid, s) for rid, s in newer if s <= cut]
    chosen = [(rid, s) for rid, s in ordered if micros(s) <= version] + newer
    return chosen, max(micros(s) for _, s in newer) if newer else version
