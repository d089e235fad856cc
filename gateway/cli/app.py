"""The `crm-gateway` command's typer app and what its commands share: the consoles, the option
types, SPEC.md's exit codes for the gateway's errors (0 success, 1 user error, 2 runtime
failure), and the config and gateway a command works on. The commands live in gateway.cli.main
(run, check, schema, test-rules, process) and gateway.cli.admin (the rest)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from gateway import logs
from gateway.cli.help import VersionOpt
from gateway.config import Config, default_config_path, load_config
from gateway.errors import ConfigError, GatewayError, Permanent, RuleError

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="Bring mail from mailbox folders into a CRM."
)

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


def config_at(path: Path | None) -> Config:
    return load_config(path or default_config_path())


def open_gateway(path: Path | None) -> Gateway:
    """The gateway of the config at `path`, for `with`: it is closed however the command ends."""
    from gateway.runtime.gateway import Gateway

    return Gateway(config_at(path))


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n")


def progress_bar() -> tuple[Any, Callable[[int, int], None]]:
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
