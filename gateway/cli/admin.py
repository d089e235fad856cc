"""The admin commands of `crm-gateway`: status, explain, reprocess, forget, and the quarantine,
review and crm command groups, registered on gateway.cli.app's app (gateway.cli.main imports this
module after its own commands, so the help keeps its order)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer

from gateway import logs
from gateway.cli.app import ConfigOpt, IdArg, JsonOpt, app, config_at, err, guarded, open_gateway, out, print_json
from gateway.cli.help import PlainCommand
from gateway.errors import Permanent

quarantine_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Messages that failed for good, and a way back.")
review_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Messages waiting for a person to pick a record.")
crm_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The embedded CRM.")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(review_app, name="review")
app.add_typer(crm_app, name="crm")


# ---- status, explain ---------------------------------------------------------------------


@app.command(cls=PlainCommand)
@guarded
def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Per source and folder: connection, push or poll, last sync, counts; the rules in force."""
    from gateway.admin.status import status_doc

    doc = status_doc(config_at(config))
    if as_json:
        print_json(doc)
        return
    from gateway.admin.status import render_status

    out.print(render_status(doc))


@app.command(cls=PlainCommand)
@guarded
def explain(ident: IdArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The stored trace of one message: rules, found, created, attached, tagged, or why not."""
    from gateway.admin.operations import explain_doc, render_explain

    with open_gateway(config) as gw:
        docs = explain_doc(gw, ident)
    if as_json:
        print_json(docs[0] if len(docs) == 1 else {"messages": docs})
    else:
        out.print("\n\n".join(render_explain(d) for d in docs), markup=False, highlight=False)


@app.command(cls=PlainCommand)
@guarded
def reprocess(
    state: Annotated[str, typer.Option("--state", metavar="STATE", help="ignored | skipped | review")],
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since", metavar="DATE", help="only messages that reached STATE since then (UTC unless an offset is given)"
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the messages in STATE through the current rules again."""
    if state not in ("ignored", "skipped", "review"):
        raise Permanent("--state must be ignored, skipped or review")
    from gateway.admin.operations import reprocess_state

    logs.setup("warning")
    with open_gateway(config) as gw:
        results = reprocess_state(gw, state, since)
    for pk, new_state in results:
        out.print(f"{pk}: {new_state}", markup=False, highlight=False)
    err.print(f"reprocessed {len(results)} messages", markup=False)


@app.command(cls=PlainCommand)
@guarded
def forget(
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="the person's e-mail address")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person: CRM records the gateway made, mails stored only for them, ledger traces."""
    from gateway.admin.operations import forget_address

    with open_gateway(config) as gw:
        doc = forget_address(gw, address)
    if as_json:
        print_json(doc)
    else:
        out.print(
            f"forgot {address}: {len(doc['records_deleted'])} records deleted, {doc['emails_removed']} mails removed, "
            f"{doc['emails_unlinked']} mails unlinked, {doc['ledger_messages']} ledger traces erased",
            markup=False,
            highlight=False,
        )


WAITING_FOR_FIX = "another reconcile --fix is running on this ledger: waiting for it to end"


@app.command(cls=PlainCommand)
@guarded
def reconcile(
    source: Annotated[str | None, typer.Option("--source", metavar="S", help="only this source")] = None,
    folder: Annotated[str | None, typer.Option("--folder", metavar="F", help="only this watched folder")] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", metavar="DATE", help="only copies that arrived since then (UTC unless an offset is given)"),
    ] = None,
    fix: Annotated[bool, typer.Option("--fix", help="hand what is missing to the pipeline again, tag untagged copies")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the watched folders with the ledger and the CRM; exit 1 while findings remain."""
    from gateway.admin.reconcile import reconcile as run_reconcile

    logs.setup("warning")
    with open_gateway(config) as gw, _progress() as progress:
        report = run_reconcile(gw, source, folder, since, fix, progress, waiting=lambda: err.print(WAITING_FOR_FIX, markup=False))
    if as_json:
        print_json(report.to_json())
    else:
        out.print(report.text(), markup=False, highlight=False)
    if not report.reconciled:
        raise typer.Exit(1)


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A bar per long folder on a terminal (stderr); nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    tasks: dict[str, Any] = {}
    with Progress(console=err) as bar:

        def advance(label: str, done: int, total: int) -> None:
            if total < 1000 and label not in tasks:
                return
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield advance


# ---- quarantine and review ---------------------------------------------------------------


@quarantine_app.command("list", cls=PlainCommand)
@guarded
def quarantine_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The messages that failed for good, and why."""
    from gateway.admin.operations import listing, render_listing

    with open_gateway(config) as gw:
        rows = listing(gw, "quarantined")
    print_json({"quarantined": rows}) if as_json else out.print(render_listing(rows, "quarantined"))


@quarantine_app.command("show", cls=PlainCommand)
@guarded
def quarantine_show(ident: IdArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """One quarantined message in full (its trace and reason)."""
    explain(ident, config, as_json)


@quarantine_app.command("retry", cls=PlainCommand)
@guarded
def quarantine_retry(
    ident: Annotated[str | None, typer.Argument(metavar="ID|MESSAGE-ID", help="one message (or --all)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every quarantined message")] = False,
    config: ConfigOpt = None,
) -> None:
    """Send quarantined messages through the current rules again, now."""
    from gateway.admin.operations import retry_quarantined

    if not ident and not all_:
        raise Permanent("give an ID or --all")
    logs.setup("warning")
    with open_gateway(config) as gw:
        results = retry_quarantined(gw, None if all_ else ident)
    for pk, new_state in results:
        out.print(f"{pk}: {new_state}", markup=False, highlight=False)
    if any(s == "quarantined" for _, s in results):
        raise typer.Exit(2)


@review_app.command("list", cls=PlainCommand)
@guarded
def review_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The messages waiting for a person, with the candidate records."""
    from gateway.admin.operations import listing, render_listing

    with open_gateway(config) as gw:
        rows = listing(gw, "review")
    print_json({"review": rows}) if as_json else out.print(render_listing(rows, "review"))


@review_app.command("resolve", cls=PlainCommand)
@guarded
def review_resolve(
    ident: IdArg,
    to: Annotated[list[str], typer.Option("--to", metavar="KIND:ID", help="a record to attach to; may repeat")],
    force: Annotated[bool, typer.Option("--force", help="attach to a record that is not among the candidates")] = False,
    config: ConfigOpt = None,
) -> None:
    """Attach a message in review to the record(s) a person picked, then tag it."""
    from gateway.admin.operations import resolve_review

    logs.setup("warning")
    with open_gateway(config) as gw:
        done = resolve_review(gw, ident, to=to, force=force)
    for label in done.outside:
        err.print(f"note: {label} was not among the candidates; attached there as asked (--force)", markup=False, highlight=False)
    out.print(f"{ident}: {done.state}", markup=False, highlight=False)


@review_app.command("create", cls=PlainCommand)
@guarded
def review_create(
    ident: IdArg,
    kind: Annotated[str, typer.Option("--kind", metavar="KIND", help="lead | contact | account")],
    config: ConfigOpt = None,
) -> None:
    """Create a record of KIND for the message's counterpart, attach the message, tag it."""
    from gateway.admin.operations import resolve_review

    logs.setup("warning")
    with open_gateway(config) as gw:
        done = resolve_review(gw, ident, create_kind=kind)
    out.print(f"{ident}: {done.state}", markup=False, highlight=False)


@crm_app.command("dump", cls=PlainCommand)
@guarded
def crm_dump(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON is the only output (accepted for symmetry)")] = True,
) -> None:
    """The whole embedded CRM as JSON."""
    from gateway.runtime.parts import crm_connector

    cfg = config_at(config)
    if cfg.crm.backend != "sql":
        raise Permanent(f"crm dump works on the embedded CRM only (crm.backend is {cfg.crm.backend!r})")
    crm = crm_connector(cfg)
    try:
        print_json(crm.dump())  # type: ignore[attr-defined]
    finally:
        crm.close()


@crm_app.command("search", cls=PlainCommand)
@guarded
def crm_search(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="part of a name, address or domain")],
    kind: Annotated[str | None, typer.Option("--kind", metavar="KIND", help="lead | contact | account")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """CRM records by name, address or domain (the API's /api/v1/crm/search)."""
    from gateway.admin.records import search

    with open_gateway(config) as gw:
        hits = search(gw, text, kind, None)
    if as_json:
        print_json({"records": hits})
        return
    for h in hits:
        out.print(f"{h['record']}  {h['name']}  {', '.join(h['emails']) or h['domain'] or '-'}", markup=False, highlight=False)


@app.command(cls=PlainCommand)
@guarded
def link(
    ident: IdArg,
    to: Annotated[str, typer.Option("--to", metavar="KIND:ID", help="the record to file the message on")],
    config: ConfigOpt = None,
) -> None:
    """File a handled message on one more CRM record (linking twice leaves one link)."""
    from gateway.admin.records import link as link_message

    logs.setup("warning")
    with open_gateway(config) as gw:
        done = link_message(
            gw, to, message=int(ident) if ident.isdigit() else None, message_id=None if ident.isdigit() else ident, scope=None
        )
    out.print(f"{done['message']}: on {done['record']} (email {done['email_id']})", markup=False, highlight=False)
