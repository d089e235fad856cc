"""The spool: raw messages as files, durable before anyone is told they were received.

Sources hand over files, never bytes in memory, so the queue between intake and pipeline
costs no RAM per message. A Maildir file is hard-linked (free, same file system) or copied;
bytes from the network are written to a temporary name, fsynced and renamed.

New files go into one folder per hour, so a batch is made durable with one directory sync;
the files of a batch are fsynced in parallel, which the file system commits together.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.errors import Retryable


class SpoolElsewhere(Retryable):
    """A copy spooled by another gateway (another machine's spool) that its mailbox cannot give
    again now: tried again later, never quarantined for it (gateway/pipeline/failure.py)."""


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._folders: set[Path] = set()
        self._pool: ThreadPoolExecutor | None = None

    def _folder(self) -> Path:
        folder = self.root / time.strftime("%Y%m%d%H", time.gmtime())
        if folder not in self._folders:
            if not folder.exists():
                folder.mkdir(exist_ok=True)
                self._sync_dir(self.root)  # the new folder's own entry must survive a power loss too
            self._folders.add(folder)
        return folder

    def _new_path(self) -> Path:
        return self._folder() / f"{uuid.uuid4().hex}.eml"

    def store(self, raw: bytes) -> Path:
        return self.store_many([raw])[0]

    def store_many(self, raws: Sequence[bytes]) -> list[Path]:
        """Write messages and make them durable before returning their paths.

        Files are written under their final names and synced together with their folders in
        one parallel round (one fsync latency instead of two). A crash before the round ends
        can leave a partial file, but no ledger row points to it: the caller records the
        paths only after this returns, and answers nobody before that."""
        finals = [self._new_path() for _ in raws]
        fds: list[int] = []
        try:
            for raw, final in zip(raws, finals, strict=False):
                fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                fds.append(fd)
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
            for folder in {f.parent for f in finals}:
                fds.append(os.open(folder, os.O_RDONLY))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="spool-fsync")
            list(self._pool.map(os.fsync, fds))
        finally:
            for fd in fds:
                os.close(fd)
        return finals

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

    def discard(self, path: str | None) -> None:
        """Drop a spooled file of this spool's. A path elsewhere is another gateway's spool (on
        another machine, or a second gateway on this one): not ours to drop."""
        if path and self.owns(path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def owns(self, path: str) -> bool:
        return Path(path).resolve().is_relative_to(self.root.resolve())
