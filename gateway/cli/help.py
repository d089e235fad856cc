"""How the `crm-gateway` command presents itself: help in the usual Unix form, `--version`,
and SPEC.md's exit codes for bad arguments (1, a user error; click's own default is 2,
which SPEC.md keeps for runtime failures)."""

from __future__ import annotations

import sys
from typing import Any

import click
import typer
from typer.core import TyperCommand

from gateway import __version__

# Newer Typer carries its own copy of click: its usage errors derive from TyperException.
_USAGE_ERRORS: tuple[type[Exception], ...] = tuple({getattr(typer, "TyperException", click.ClickException), click.ClickException})
_ABORTS: tuple[type[BaseException], ...] = tuple({typer.Abort, click.Abort})


class PlainCommand(TyperCommand):
    """Usage as `ID` (required) and `[ID]` (optional), and no Python type names (`<str>`,
    `<list[Path]>`) next to arguments: the metavar and the help text say what is wanted."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for p in params:
            if _is_argument(p):
                p.display_type_rich = lambda ctx: None  # type: ignore[attr-defined]  # read by typer's rich help, not declared on click's Parameter
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if _is_argument(p):
                name = p.metavar or (p.name or "").upper()
                if p.nargs != 1 and not name.endswith("..."):
                    name += "..."
                pieces.append(name if p.required else f"[{name}]")
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces


def _is_argument(p: Any) -> bool:
    return getattr(p, "param_type_name", "") == "argument"


def show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"crm-gateway {__version__}\n")
        raise typer.Exit(0)


VersionOpt = typer.Option("--version", is_eager=True, callback=show_version, help="print the version and exit")


def run_app(app: Any) -> None:
    """Run the Typer app; a usage error (unknown option, missing argument, bad value) exits 1."""
    try:
        code = app(standalone_mode=False)
    except _USAGE_ERRORS as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)
    except _ABORTS:
        sys.stderr.write("aborted\n")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
