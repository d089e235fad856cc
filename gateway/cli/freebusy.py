"""`crm-gateway freebusy ADDRESS... --from --to`: the attendees' free/busy and their common free
time, from their calendars (gateway/admin/freebusy.py asks; this module parses and prints).
Exit 0 when every address was answered, 1 when one was not (or the question is wrong)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from gateway import logs
from gateway.cli.app import ConfigOpt, JsonOpt, app, guarded, open_gateway, out, print_json
from gateway.cli.help import PlainCommand
from gateway.errors import Permanent


def parse_when(text: str, option: str) -> datetime:
    """An ISO 8601 date or time; UTC unless it carries an offset (as every command's times)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Permanent(f"{option}: not an ISO 8601 date or time: {text!r} (e.g. 2026-12-07T09:00+01:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@app.command(cls=PlainCommand)
@guarded
def freebusy(
    addresses: Annotated[list[str], typer.Argument(metavar="ADDRESS...", help="the attendees' mail addresses")],
    start: Annotated[str, typer.Option("--from", metavar="DATETIME", help="start, ISO 8601 (UTC unless an offset is given)")],
    end: Annotated[str, typer.Option("--to", metavar="DATETIME", help="end, ISO 8601 (UTC unless an offset is given)")],
    interval: Annotated[int, typer.Option("--interval", metavar="MIN", help="minutes per slot of the merged view")] = 30,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """When the attendees are free or busy (Exchange, Microsoft 365) and their common free time; exit 1 if one is not answered."""
    from gateway.admin.freebusy import answerers, ask

    begin, finish = parse_when(start, "--from"), parse_when(end, "--to")
    logs.setup("warning")
    with open_gateway(config) as gw:
        report = ask(answerers(gw), addresses, begin, finish, interval)
    if as_json:
        print_json(report.to_json())
    else:
        out.print(report.text(), markup=False, highlight=False)
    if not report.complete:
        raise typer.Exit(1)
