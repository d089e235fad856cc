"""A small file of records a command writes and the running gateway reads (the API tokens,
the web users): read again whenever it changed (its mtime and size), so what `crm-gateway token`
or `user` wrote counts at the next request, and written whole, atomically, readable by its
owner only (it holds hashes)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from gateway.errors import Permanent

T = TypeVar("T")


class KeptFile(Generic[T]):
    def __init__(self, path: Path, parse: Callable[[str], list[T]], what: str) -> None:
        """`parse`: the file's text → its records (raise ValueError, KeyError, TypeError or
        AttributeError on a bad file); `what`: the records, in words, for the error."""
        self.path = path
        self._parse = parse
        self._what = what
        self._seen: tuple[int, int, int] | None = None
        self._records: list[T] = []

    def read(self) -> list[T]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._records = None, []
            return []
        if self._seen == (st.st_ino, st.st_mtime_ns, st.st_size):  # a rewrite is a new inode
            return list(self._records)
        try:
            records = self._parse(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Permanent(f"{self.path}: cannot read the {self._what}: {exc}") from exc
        self._seen, self._records = (st.st_ino, st.st_mtime_ns, st.st_size), records
        return list(records)

    def write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # two writers, two files
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)
