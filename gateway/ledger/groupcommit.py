"""Group commit: concurrent callers share one durable write.

Each SMTP session must hear `250` only once its mail is fsynced and in the ledger. Done one
by one, every session waits for its own fsync and ledger commit; done together, the sessions
that arrive while a write is under way are written in the next one. No timer: the first
caller with nobody writing becomes the writer, takes everything pending (its own item
included), writes it, and wakes the others; a caller whose item is not written yet becomes
the next writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Item(Generic[T, R]):
    __slots__ = ("value", "result", "error", "done")

    def __init__(self, value: T) -> None:
        self.value = value
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[T, R]):
    def __init__(self, write_many: Callable[[Sequence[T]], Sequence[R]]) -> None:
        self._write_many = write_many
        self._cv = threading.Condition()
        self._pending: list[_Item[T, R]] = []
        self._writing = False

    def submit(self, value: T) -> R:
        item: _Item[T, R] = _Item(value)
        with self._cv:
            self._pending.append(item)
            while not item.done:
                if self._writing:
                    self._cv.wait()
                    continue
                self._writing = True
                batch, self._pending = self._pending, []
                self._cv.release()
                try:
                    self._write(batch)
                finally:
                    self._cv.acquire()
                    self._writing = False
                    self._cv.notify_all()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _write(self, batch: list[_Item[T, R]]) -> None:
        try:
            results = self._write_many([i.value for i in batch])
            for i, r in zip(batch, results, strict=False):
                i.result = r
        except BaseException as exc:  # every caller of the batch hears the failure (451)
            for i in batch:
                i.error = exc
        for i in batch:
            i.done = True
