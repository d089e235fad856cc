"""Where a Maildir keeps a folder's files (`fs`: VLeads/new, Maildir++: .VLeads/new), and the
rule that nothing the gateway lists, creates or renames lies outside the Maildir's root."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.errors import Permanent
from gateway.reading.foldernames import folder_problem

SUBDIRS = ("new", "cur", "tmp")


def item_key(filename: str) -> str:
    return filename.split(":", 1)[0]


class MaildirLayout:
    def __init__(self, root: Path, layout: str) -> None:
        self.root = root
        self.layout = layout

    def folder_path(self, folder: str) -> Path:
        """The folder's directory, never outside the root (Permanent otherwise)."""
        bad = folder_problem(folder, maildir=True)
        if bad:
            raise Permanent(f"maildir {self.root}: {bad}")
        if folder.upper() == "INBOX":
            return self.root
        plus = self.root / ("." + folder.replace("/", "."))
        plain = self.root / folder
        if self.layout == "maildir++":
            return self.confine(plus)
        if self.layout == "fs":
            return self.confine(plain)
        return self.confine(plus if plus.is_dir() and not plain.is_dir() else plain)

    def confine(self, path: Path) -> Path:
        """`path` when its real location (symlinks resolved, as far as it exists) is under the
        root's real location; Permanent otherwise: a folder name or a symlink planted in the
        Maildir must not let the gateway list, create or rename files elsewhere."""
        root = self.root.resolve()
        real = path.resolve()
        if real != root and not real.is_relative_to(root):
            raise Permanent(f"maildir {self.root}: {path} leads to {real}, outside the Maildir: refused")
        return path

    def ensure(self, folder: str) -> Path:
        path = self.folder_path(folder)
        for sub in SUBDIRS:
            self.confine(path / sub)  # before mkdir: a symlinked sub must not create dirs elsewhere
            (path / sub).mkdir(parents=True, exist_ok=True)
        return path

    def files(self, folder: str) -> list[Path]:
        path = self.folder_path(folder)
        out: list[Path] = []
        for sub in ("new", "cur"):
            try:
                with os.scandir(path / sub) as it:
                    # a symlink is never mail: it could point anywhere on the machine
                    out.extend(Path(e.path) for e in it if e.is_file(follow_symlinks=False) and not e.name.startswith("."))
            except FileNotFoundError:
                continue
        return out

    def locate(self, folder: str, key: str) -> Path | None:
        for f in self.files(folder):
            if item_key(f.name) == key:
                return f
        return None
