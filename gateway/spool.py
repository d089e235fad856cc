"""The spool: raw messages as files, durable before anyone is told they were received.

Sources hand over files, never bytes in memory, so the queue between intake and pipeline
costs no RAM per message. A Maildir file is hard-linked (free, same file system) or copied;
bytes from the network are written to a temporary name, fsynced and renamed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _new_path(self) -> Path:
        name = uuid.uuid4().hex
        folder = self.root / name[:2]
        folder.mkdir(exist_ok=True)
        return folder / f"{name}.eml"

    def store(self, raw: bytes) -> Path:
        final = self._new_path()
        tmp = self.tmp / final.name
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        self._sync_dir(final.parent)
        return final

    def adopt(self, path: Path) -> Path:
        """Keep a copy of a file the user may move or delete (hard link where possible)."""
        final = self._new_path()
        try:
            os.link(path, final)
        except OSError:
            tmp = self.tmp / final.name
            shutil.copyfile(path, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        return final

    @staticmethod
    def _sync_dir(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def discard(path: str | None) -> None:
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
