"""`check` for an IMAP source: log in, and refuse what this server cannot do with the rules.

What the rules can do comes in as `RuleFacts` (the caller asks the engine): a mailbox never
reads rules itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from imapclient.exceptions import IMAPClientError

from gateway.errors import ConfigError
from gateway.mailboxes.base import RuleFacts
from gateway.mailboxes.imap.config import ImapConfig
from gateway.mailboxes.imap.conn import NETWORK_ERRORS, ImapAuthError, connect, logout_quietly
from gateway.mailboxes.roster import RosterError, read_roster_file


def labels_that_file_mail(facts: RuleFacts, folders: Sequence[str]) -> list[str]:
    """On Gmail labels are folders: a tag named like a watched folder would file the mail there
    again (RULES.md). One problem per such tag, at the place its name is written."""
    watched = {f.casefold(): f for f in folders}
    return [
        f"{where}: tag '{tag}' is the watched folder '{watched[tag.casefold()]}': "
        "on this server labels are folders, so the tag would file the mail there again"
        for tag, where in facts.tags
        if tag.casefold() in watched
    ]


def check(src: ImapConfig, facts: RuleFacts, where: str) -> list[str]:
    """Problems with this IMAP source, one line each (empty: fine). `where` starts each line.
    An entry with `mailboxes` logs in to its first mailbox through the master user."""
    if src.many:
        first = _first_mailbox(src)
        if first is None:
            return []  # an empty or unreadable list: the config's own check says so
        src = src.for_mailbox(first)
    try:
        client, info = connect(src)
    except (ImapAuthError, ConfigError) as exc:
        return [f"{where}: {exc}"]
    except (*NETWORK_ERRORS, IMAPClientError):
        return []  # unreachable now: a runtime state, shown by `status`, not a config error
    problems: list[str] = []
    try:
        if info.gmail:
            problems += [f"{p} (on {src.name}, a Gmail account)" for p in labels_that_file_mail(facts, src.folders)]
        if facts.movers and not (info.move or info.uidplus):
            problems.append(
                f"{where}: {src.host} offers neither MOVE nor UIDPLUS, so `move` is refused "
                f"(it would need a plain EXPUNGE, which removes every message marked deleted); "
                f"rules that move: {', '.join(facts.movers)}"
            )
    finally:
        logout_quietly(client)
    return problems


def _first_mailbox(src: ImapConfig) -> str | None:
    if src.mailboxes:
        return src.mailboxes[0]
    try:  # relative: from where `check` runs (unreadable: no login tried; the config check names the file)
        users = read_roster_file(Path(src.mailboxes_file or ""), fold_case=False)
    except RosterError:
        return None
    return users[0] if users else None
