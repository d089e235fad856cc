"""`crm-gateway pimsync`: one round of the contact sync for every configured address book, and
`crm-gateway pimsync conflicts`: the fields changed on both sides, with both values.

Exit codes as SPEC.md says: 0 every address book synced, 1 a user error (config, refused
credentials, data a side refused), 2 a runtime failure (a server or the database unreachable;
the next round takes up where this one stopped)."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer

from gateway import logs
from gateway.cli.admin import _progress
from gateway.cli.app import ConfigOpt, JsonOpt, app, config_at, err, guarded, out, print_json
from gateway.cli.help import PlainCommand
from gateway.errors import Permanent

pimsync_app = typer.Typer(
    invoke_without_command=True,
    rich_markup_mode=None,
    help="Sync contacts both ways between the CRM and the users' address books (pimsync: in config.yaml).",
)
app.add_typer(pimsync_app, name="pimsync")
BookOpt = Annotated[list[str] | None, typer.Option("--book", metavar="NAME", help="only this address book (repeatable)")]


WatchOpt = Annotated[bool, typer.Option("--watch", help="rounds until SIGINT/SIGTERM: a CRM change within seconds")]
EveryOpt = Annotated[
    float,
    typer.Option(
        "--every", metavar="SECONDS", min=1, show_default=False, help="with --watch: read the address books this often [300]"
    ),
]


@pimsync_app.callback(invoke_without_command=True)
@guarded
def pimsync(
    ctx: typer.Context,
    config: ConfigOpt = None,
    book: BookOpt = None,
    as_json: JsonOpt = False,
    watch: WatchOpt = False,
    every: EveryOpt = 300.0,
) -> None:
    """One sync round for every configured address book (or those named with --book)."""
    if ctx.invoked_subcommand is not None:
        return
    from gateway.pimsync.rounds import PimSync

    cfg = config_at(config)
    if not cfg.pimsync.addressbooks:
        err.print("pimsync: no address books configured (pimsync.addressbooks in config.yaml)", markup=False)
        raise typer.Exit(1)
    with PimSync(cfg, book) as sync:
        if watch:
            _watch(sync, every, as_json)
            return
        with _progress() as advance:
            reports, failed = sync.round(progress=advance)
    _report(reports, failed, as_json)
    if failed:
        raise typer.Exit(1 if all(isinstance(e, Permanent) for e in failed.values()) else 2)


def _watch(sync: Any, every: float, as_json: bool) -> None:
    """Rounds until a signal; each round's lines as a round prints them (failures included)."""
    import signal
    import threading

    from gateway.pimsync.watch import watch

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    watch(sync, stop, lambda results: _report(*results, as_json), every=every)


def _report(reports: list[Any], failed: dict[str, Any], as_json: bool) -> None:
    if as_json:
        books = [{**r.__dict__, "notes": [logs.redact_urls(n) for n in r.notes]} for r in reports]
        print_json({"books": books, "failed": {n: logs.redact_urls(str(e)) for n, e in failed.items()}})
    else:
        for r in reports:
            out.print(
                f"{r.book}: cards {r.cards_created} created, {r.cards_updated} updated, {r.cards_deleted} removed; "
                f"records {r.records_created} created, {r.records_updated} updated, {r.records_deleted} deleted, "
                f"{r.unlinked} unlinked; {r.conflicts} conflicts" + (f"; {r.skipped} skipped" if r.skipped else ""),
                markup=False,
                highlight=False,
            )
    for r in reports:
        for note in r.notes:
            err.print(f"warning: {r.book}: {logs.redact_urls(note)}", markup=False, highlight=False)
    for name, exc in failed.items():
        err.print(f"error: {name}: {logs.redact_urls(str(exc))}", markup=False, highlight=False)


@pimsync_app.command("conflicts", cls=PlainCommand)
@guarded
def pimsync_conflicts(
    config: ConfigOpt = None,
    book: Annotated[str | None, typer.Option("--book", metavar="NAME", help="only this address book's")] = None,
    resolve: Annotated[int | None, typer.Option("--resolve", metavar="ID", help="settle this conflict (with --keep)")] = None,
    keep: Annotated[
        str | None,
        typer.Option("--keep", metavar="crm|mailbox", help="with --resolve: the value to keep; the next round applies it"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fields changed on both sides since a sync: both values, which (the newer) won, and what a
    person chose; with --resolve ID --keep crm|mailbox, keep one side's value."""
    from gateway.admin import pimsync as settle
    from gateway.ledger.store import Ledger

    cfg = config_at(config)
    if (resolve is None) != (keep is None):
        err.print("pimsync conflicts: give --resolve ID and --keep crm|mailbox together", markup=False)
        raise typer.Exit(1)
    ledger = Ledger(cfg.db_url(cfg.ledger.url))
    try:
        if resolve is not None and keep is not None:
            done = settle.resolve(cfg, ledger.pim(), resolve, keep, getpass.getuser(), None)
            if as_json:
                print_json(settle.conflict_doc(done))
            else:
                out.print(f"conflict {done.id} ({done.field}): {settle.outcome(done)}", markup=False, highlight=False)
            return
        found = ledger.pim().conflicts(book)
    finally:
        ledger.close()
    if as_json:
        print_json([settle.conflict_doc(c) for c in found])
        return
    if not found:
        out.print("no conflicts", markup=False)
        return
    for c in found:
        out.print(
            f"{c.id} {c.at:%Y-%m-%d %H:%M:%S} {c.book} {c.kind}:{c.crm_id} {c.field}: "
            f"crm={json.dumps(c.crm_value, ensure_ascii=False)} card={json.dumps(c.card_value, ensure_ascii=False)} "
            f"→ {c.winner} kept" + ("" if c.state == "open" else f"; {c.state}: {settle.outcome(c)}"),
            markup=False,
            highlight=False,
        )
