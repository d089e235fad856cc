r"""Folder names are names inside a mailbox, never file-system paths.

IMAP, EWS and Graph take a folder hierarchy written with the server's separator
(`INBOX/Sales`, `INBOX.Sales`) and special-use names (`\Sent`): legitimate there. A Maildir maps a name onto directories under
its root, so there a name must stay one relative path below the root: no `..` or `.`
component, no empty component, no backslash. Everywhere: no absolute path, no `..` component,
no control character. `check` refuses a bad name where it is written; the Maildir source also
confines every file operation to its root at run time (symlinks included).
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def folder_problem(name: str, *, maildir: bool = False) -> str | None:
    """Why `name` is not an acceptable folder name, or None when it is."""
    if not name:
        return "a folder name must not be empty"
    if _CONTROL.search(name):
        return f"folder {name!r}: control characters are not allowed in a folder name"
    # (a leading backslash is IMAP/Exchange special-use, `\Sent`: refused below for a Maildir only)
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name) or name.startswith("~"):
        return f"folder {name!r}: a folder is a name inside the mailbox, not an absolute path"
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        return f"folder {name!r}: '..' is not allowed in a folder name (a folder is a name inside the mailbox, not a path)"
    if maildir:
        if "\\" in name:
            return f"folder {name!r}: a Maildir folder name must not contain a backslash"
        if any(p in ("", ".") for p in name.split("/")):
            return f"folder {name!r}: a Maildir folder name has no empty or '.' part (write A/B for a subfolder)"
    return None
