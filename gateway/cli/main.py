"""The `crm-gateway` command (SPEC.md). Exit codes: 0 success, 1 user error, 2 runtime failure.

This module holds the daily commands (run, check, schema, test-rules, process) and the entry
point; the app and what the commands share are in gateway.cli.app, the admin commands in
gateway.cli.admin (imported at the end: the help lists commands in the order they are made)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway import logs
from gateway.cli.app import (
    ConfigOpt,
    FilesArg,
    FolderOpt,
    JsonOpt,
    MailboxOpt,
    SourceOpt,
    app,
    config_at,
    err,
    guarded,
    open_gateway,
    out,
    print_json,
    progress_bar,
)
from gateway.cli.help import PlainCommand, run_app
from gateway.config import Config
from gateway.errors import Permanent

__all__ = ["app", "main"]

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
    with open_gateway(config) as gw:
        if once:
            bar, progress = progress_bar()
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
            signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=gw.reload, daemon=True).start())
        gw.run(stop)


@app.command(cls=PlainCommand)
@guarded
def check(
    config: ConfigOpt = None, online: Annotated[bool, typer.Option("--online", help="also log in to the CRM")] = False
) -> None:
    """Validate the config and every rule file; print each error as FILE:LINE:COL: message."""
    from gateway.config.rulesholder import load_for, rule_files

    cfg = config_at(config)
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
    from gateway.config.rule_folders import unwatched_folder_warnings

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

    print_json(json_schema())


# ---- test-rules and process --------------------------------------------------------------


def _say_default_folder(cfg: Config, folder: str | None) -> None:
    """Rules mostly test the folder: a silent INBOX would look like a rule that never matches."""
    if folder is None:
        from gateway.config.rule_folders import watched_folders

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
    from gateway.config.context import Contexts
    from gateway.config.rulesholder import load_for
    from gateway.engine.plan import evaluate, format_plan
    from gateway.message.parsing import parse
    from gateway.runtime.parts import crm_connector

    cfg = config_at(config)
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
        print_json(
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
    bar, progress = progress_bar() if len(files) > 1 else (None, lambda d, t: None)
    with open_gateway(config) as gw:
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
        print_json({"results": results})
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


# After the daily commands, so that `--help` lists them first, as it always has.
from gateway.cli import access as cli_access  # noqa: E402, F401  (user and token commands)
from gateway.cli import admin as cli_admin  # noqa: E402, F401  (registers its commands on `app`)
from gateway.cli import freebusy as cli_freebusy  # noqa: E402, F401  (the attendees' free/busy)
from gateway.cli import pimsync as cli_pimsync  # noqa: E402, F401  (the contact sync's commands)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
