"""The `crm-gateway` command (SPEC.md). Exit codes: 0 success, 1 user error, 2 runtime failure."""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from gateway import logs
from gateway.cli_help import PlainCommand, VersionOpt, run_app
from gateway.config import Config, default_config_path, load_config
from gateway.errors import ConfigError, GatewayError, Permanent, RuleError

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="Bring mail from mailbox folders into a CRM."
)
quarantine_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Messages that failed for good, and a way back.")
review_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Messages waiting for a person to pick a record.")
crm_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The embedded CRM.")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(review_app, name="review")
app.add_typer(crm_app, name="crm")

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("-c", "--config", metavar="PATH", help="config file [./config.yaml, else config.example.yaml]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]
IdArg = Annotated[str, typer.Argument(metavar="ID|MESSAGE-ID", help="ledger id (as listed) or the Message-ID")]
FolderOpt = Annotated[
    str | None, typer.Option("--folder", metavar="FOLDER", help="as if found in this folder [INBOX, said on stderr]")
]
SourceOpt = Annotated[str | None, typer.Option("--source", metavar="NAME", help="as if found by this configured source")]
MailboxOpt = Annotated[str | None, typer.Option("--mailbox", metavar="ADDR", help="as if found in this person's mailbox")]
FilesArg = Annotated[list[Path], typer.Argument(metavar="FILE.eml...", help="raw messages (.eml)")]
F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Map the gateway's errors to SPEC.md's exit codes with a message on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, RuleError) as exc:
            for problem in exc.problems:
                err.print(logs.redact_urls(problem), markup=False, highlight=False)
            raise typer.Exit(1) from None
        except Permanent as exc:  # messages may quote a URL with its credentials: masked
            err.print(f"error: {logs.redact_urls(str(exc))}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        except GatewayError as exc:
            err.print(f"error: {logs.redact_urls(str(exc))}", markup=False, highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _config(path: Path | None) -> Config:
    return load_config(path or default_config_path())


def _gateway(path: Path | None) -> Gateway:
    """The gateway of the config at `path`, for `with`: it is closed however the command ends."""
    from gateway.runtime.gateway import Gateway

    return Gateway(_config(path))


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n")


def _progress_bar() -> tuple[Any, Callable[[int, int], None]]:
    """A rich progress bar on a terminal; nothing (and no cost) elsewhere."""
    if not err.is_terminal:
        return None, lambda done, total: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("processing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err)
    task = bar.add_task("mail", total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total or None)


@app.callback()
def _root(version: Annotated[bool, VersionOpt] = False) -> None:
    """Bring mail from mailbox folders into a CRM."""


# ---- run, check, schema ------------------------------------------------------------------


@app.command(cls=PlainCommand)
@guarded
def run(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="process what is there now, then exit")] = False,
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL", help="debug | info | warning | error")] = "info",
) -> None:
    """Start every configured source and process mail until SIGINT/SIGTERM."""
    logs.setup(log_level)
    with _gateway(config) as gw:
        if once:
            bar, progress = _progress_bar()
            if bar:
                bar.start()
            try:
                summary = gw.run_once(progress)
            finally:
                if bar:
                    bar.stop()
            err.print("done: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())), markup=False)
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=gw.reload_rules, daemon=True).start())
        gw.run(stop)


@app.command(cls=PlainCommand)
@guarded
def check(
    config: ConfigOpt = None, online: Annotated[bool, typer.Option("--online", help="also log in to the CRM")] = False
) -> None:
    """Validate the config and every rule file; print each error as FILE:LINE:COL: message."""
    from gateway.rulesholder import load_for, rule_files

    cfg = _config(config)
    rules = load_for(cfg)
    problems: list[str] = []
    from gateway.engine.facts import rule_facts
    from gateway.mailboxes.registry import check_source

    facts = rule_facts(rules, cfg.base_dir)  # what a mailbox's own check needs of the rules
    for src in cfg.sources:  # e.g. IMAP: logins must work; move needs MOVE or UIDPLUS
        problems += check_source(src, facts, f"{cfg.path}: sources: {src.name}")
    for problem in problems:
        err.print(problem, markup=False, highlight=False)
    if problems:
        raise typer.Exit(1)
    from gateway.rule_folders import unwatched_folder_warnings

    for warning in unwatched_folder_warnings(cfg, rule_files(cfg)):
        err.print(warning, markup=False, highlight=False)
    if online:
        from gateway.errors import Retryable
        from gateway.runtime.parts import crm_connector

        try:
            crm = crm_connector(cfg)
            try:
                getattr(crm, "check_online", lambda: None)()
            finally:
                crm.close()
        except (Retryable, Permanent) as exc:
            err.print(
                f"{cfg.path}: crm ({cfg.crm.backend} at {logs.redact_url(cfg.crm.url)}): {logs.redact_urls(str(exc))}",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(2 if isinstance(exc, Retryable) else 1) from None
    err.print(
        f"ok: {cfg.path}: {len(cfg.sources)} sources; {len(rules.rules)} rules in "
        f"{len(rule_files(cfg))} files" + ("; CRM reachable, credentials accepted" if online else ""),
        markup=False,
        highlight=False,
    )


@app.command(cls=PlainCommand)
@guarded
def schema(config: ConfigOpt = None) -> None:
    """Print the JSON Schema of the rule files."""
    from gateway.engine.schema import json_schema

    _print_json(json_schema())


# ---- test-rules and process --------------------------------------------------------------


def _say_default_folder(cfg: Config, folder: str | None) -> None:
    """Rules mostly test the folder: a silent INBOX would look like a rule that never matches."""
    if folder is None:
        from gateway.rule_folders import watched_folders

        err.print(
            f"note: no --folder given: as if found in INBOX (watched folders: {', '.join(watched_folders(cfg)) or 'none'})",
            markup=False,
            highlight=False,
        )


def _ref_for(cfg: Config, raw: bytes, path: Path, source: str | None, folder: str | None, mailbox: str | None) -> Any:
    from gateway.runtime.parts import file_ref

    src = cfg.source(source) if source else None
    box = mailbox or (src.mailbox if src else "") or ""
    return file_ref(path, raw, source=source, folder=folder or "INBOX", mailbox=box)


@app.command("test-rules", cls=PlainCommand)
@guarded
def test_rules(
    file: Annotated[Path, typer.Argument(metavar="FILE.eml", help="a raw message (.eml)")],
    config: ConfigOpt = None,
    folder: FolderOpt = None,
    source: SourceOpt = None,
    mailbox: MailboxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run one message: the rules that matched, the trace, the planned CRM work and tags. Writes nothing."""
    from gateway.context import Contexts
    from gateway.engine.plan import evaluate, format_plan
    from gateway.message import parse
    from gateway.rulesholder import load_for
    from gateway.runtime.parts import crm_connector

    cfg = _config(config)
    rules = load_for(cfg)
    _say_default_folder(cfg, folder)
    raw = _read_file(file)
    message = parse(raw, max_size=cfg.max_message_size)
    ref = _ref_for(cfg, raw, file, source, folder, mailbox)
    ctx = Contexts(cfg).for_ref(ref)
    crm = crm_connector(cfg)
    try:
        plan = evaluate(message, ctx, rules, crm)
    finally:
        crm.close()
    if as_json:
        _print_json(
            {
                "file": str(file),
                "message_id": message.message_id,
                "folder": ref.folder,
                "source": ref.source,
                "mailbox": ref.account,
                "plan": plan.to_json(),
            }
        )
    else:
        out.print(format_plan(plan), markup=False, highlight=False)


def _read_file(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise Permanent(f"{file}: {exc.strerror}") from None


@app.command(cls=PlainCommand)
@guarded
def process(
    files: FilesArg,
    config: ConfigOpt = None,
    folder: FolderOpt = None,
    source: SourceOpt = None,
    mailbox: MailboxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run .eml files through the real pipeline as if found in FOLDER (no mailbox to tag)."""
    logs.setup("warning" if as_json else "info")
    results = []
    bar, progress = _progress_bar() if len(files) > 1 else (None, lambda d, t: None)
    with _gateway(config) as gw:
        _say_default_folder(gw.config, folder)
        if bar:
            bar.start()
        try:
            for i, f in enumerate(files, 1):
                raw = _read_file(f)
                pk = gw.intake.record(_ref_for(gw.config, raw, f, source, folder, mailbox), raw)
                state = gw.handle(pk)
                loc = gw.ledger.location(pk)
                row = gw.ledger.message(loc.message_pk) if loc.message_pk else None
                results.append(
                    {
                        "file": str(f),
                        "id": row.id if row else None,
                        "message_id": row.message_id if row else None,
                        "state": state,
                        "reason": row.reason if row else "",
                        "tags": list(loc.tags),
                    }
                )
                progress(i, len(files))
        finally:
            if bar:
                bar.stop()
    if as_json:
        _print_json({"results": results})
    else:
        for r in results:
            out.print(
                f"{r['file']}: {r['state']}"
                + (f" ({r['reason']})" if r["reason"] else "")
                + (f" id={r['id']}" if r["id"] else ""),
                markup=False,
                highlight=False,
            )
    if any(r["state"] in ("quarantined", "retrying") for r in results):
        raise typer.Exit(2)


# ---- status, explain ---------------------------------------------------------------------


@app.command(cls=PlainCommand)
@guarded
def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Per source and folder: connection, push or poll, last sync, counts; the rules in force."""
    from gateway.admin import status_doc

    doc = status_doc(_config(config))
    if as_json:
        _print_json(doc)
        return
    from gateway.admin import render_status

    out.print(render_status(doc))


@app.command(cls=PlainCommand)
@guarded
def explain(ident: IdArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The stored trace of one message: rules, found, created, attached, tagged, or why not."""
    from gateway.admin import explain_doc, render_explain

    with _gateway(config) as gw:
        docs = explain_doc(gw, ident)
    if as_json:
        _print_json(docs[0] if len(docs) == 1 else {"messages": docs})
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
    from gateway.admin import reprocess_state

    logs.setup("warning")
    with _gateway(config) as gw:
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
    from gateway.admin import forget_address

    with _gateway(config) as gw:
        doc = forget_address(gw, address)
    if as_json:
        _print_json(doc)
    else:
        out.print(
            f"forgot {address}: {len(doc['records_deleted'])} records deleted, {doc['emails_removed']} mails removed, "
            f"{doc['emails_unlinked']} mails unlinked, {doc['ledger_messages']} ledger traces erased",
            markup=False,
            highlight=False,
        )


# ---- quarantine and review ---------------------------------------------------------------


@quarantine_app.command("list", cls=PlainCommand)
@guarded
def quarantine_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The messages that failed for good, and why."""
    from gateway.admin import listing, render_listing

    with _gateway(config) as gw:
        rows = listing(gw, "quarantined")
    _print_json({"quarantined": rows}) if as_json else out.print(render_listing(rows, "quarantined"))


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
    from gateway.admin import retry_quarantined

    if not ident and not all_:
        raise Permanent("give an ID or --all")
    logs.setup("warning")
    with _gateway(config) as gw:
        results = retry_quarantined(gw, None if all_ else ident)
    for pk, new_state in results:
        out.print(f"{pk}: {new_state}", markup=False, highlight=False)
    if any(s == "quarantined" for _, s in results):
        raise typer.Exit(2)


@review_app.command("list", cls=PlainCommand)
@guarded
def review_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The messages waiting for a person, with the candidate records."""
    from gateway.admin import listing, render_listing

    with _gateway(config) as gw:
        rows = listing(gw, "review")
    _print_json({"review": rows}) if as_json else out.print(render_listing(rows, "review"))


@review_app.command("resolve", cls=PlainCommand)
@guarded
def review_resolve(
    ident: IdArg,
    to: Annotated[list[str], typer.Option("--to", metavar="KIND:ID", help="a record to attach to; may repeat")],
    force: Annotated[bool, typer.Option("--force", help="attach to a record that is not among the candidates")] = False,
    config: ConfigOpt = None,
) -> None:
    """Attach a message in review to the record(s) a person picked, then tag it."""
    from gateway.admin import resolve_review

    logs.setup("warning")
    with _gateway(config) as gw:
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
    from gateway.admin import resolve_review

    logs.setup("warning")
    with _gateway(config) as gw:
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

    cfg = _config(config)
    if cfg.crm.backend != "sql":
        raise Permanent(f"crm dump works on the embedded CRM only (crm.backend is {cfg.crm.backend!r})")
    crm = crm_connector(cfg)
    try:
        _print_json(crm.dump())  # type: ignore[attr-defined]
    finally:
        crm.close()


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
