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


def labels_that_file_mail(config: Any, folders: list[str]) -> list[str]:
    """On Gmail labels are folders: a tag named like a watched folder would file the mail there
    again (RULES.md). The rule problems that only this server's labels make."""
    from gateway.engine.loader import check_rules_text, display_name
    from gateway.rulesholder import rule_files

    files = []
    for path in rule_files(config):
        try:
            files.append((display_name(path, config.base_dir), path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError):
            continue  # reported by the rules check itself
    _, anywhere = check_rules_text(files, watched_folders=folders)
    _, on_gmail = check_rules_text(files, watched_folders=folders, labels_are_folders=True)
    return [p for p in on_gmail if p not in anywhere]


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
            if info.gmail:
                problems += [f"{p} (on {src.name}, a Gmail account)" for p in labels_that_file_mail(config, src.folders)]
            if movers and not (info.move or info.uidplus):
                problems.append(f"{where}: {src.host} offers neither MOVE nor UIDPLUS, so `move` is refused "
                                f"(it would need a plain EXPUNGE, which removes every message marked deleted); "
                                f"rules that move: {', '.join(movers)}")
        finally:
            logout_quietly(client)
    return problems
