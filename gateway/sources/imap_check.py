"""`check` for IMAP sources: log in and refuse what the server cannot do."""

from __future__ import annotations

from typing import Any

from gateway.errors import ConfigError
from gateway.sources.imap_conn import NETWORK_ERRORS, ImapAuthError, connect, logout_quietly


def rules_that_move(rules: Any) -> list[str]:
    out = []
    for r in getattr(rules, "rules", ()):
        if any(getattr(a, "key", "") == "move" for a in r.then) or (r.on_error is not None and r.on_error.move):
            out.append(f"{r.name!r} ({r.where})")
    return out


def check_imap(config: Any, rules: Any) -> list[str]:
    """Problems with each IMAP source, one line each (empty: fine)."""
    from imapclient.exceptions import IMAPClientError

    problems: list[str] = []
    movers = rules_that_move(rules)
    for src in config.sources:
        if src.type != "imap":
            continue
        where = f"{config.path}: sources: {src.name}"
        try:
            client, info = connect(src)
        except (ImapAuthError, ConfigError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        except (*NETWORK_ERRORS, IMAPClientError):
            continue  # unreachable now: a runtime state, shown by `status`, not a config error
        try:
            if movers and not (info.move or info.uidplus):
                problems.append(f"{where}: {src.host} offers neither MOVE nor UIDPLUS, so `move` is refused "
                                f"(it would need a plain EXPUNGE, which removes every message marked deleted); "
                                f"rules that move: {', '.join(movers)}")
        finally:
            logout_quietly(client)
    return problems
