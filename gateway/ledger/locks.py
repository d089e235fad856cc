"""Locks that hold across threads and worker processes.

Creates for one address are serialised so two workers never both create the same person
(DESIGN.md "The journal"). Threads in one process share a lock object; worker processes on
one machine share a lock file (flock) beside the spool; machines sharing a PostgreSQL ledger
take an advisory lock in it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

_BUCKETS = 1024  # lock files: a key shares its file with few others, and the folder stays small


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


class KeyedLocks:
    """A thread lock per key: striped over a fixed set, so a long-running process does not
    keep a lock for every message and address it ever saw (two keys may share a stripe,
    which only serialises them)."""

    def __init__(self, stripes: int = 4096) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def __call__(self, key: str) -> threading.Lock:
        return self._locks[_key_hash(key) % len(self._locks)]

    @contextmanager
    def many(self, keys: Iterator[str] | list[str]) -> Iterator[None]:
        """Hold the locks of several keys: each stripe once, taken in stripe order, so two
        holders of overlapping sets never wait on each other in a cycle."""
        stripes = sorted({_key_hash(k) % len(self._locks) for k in keys})
        taken: list[threading.Lock] = []
        try:
            for i in stripes:
                self._locks[i].acquire()
                taken.append(self._locks[i])
            yield
        finally:
            for lock in reversed(taken):
                lock.release()


class AddressLocks:
    def __init__(self, lock_dir: Path, ledger_engine: Engine | None = None) -> None:
        self.lock_dir = lock_dir
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self._threads = KeyedLocks()
        pg = ledger_engine is not None and ledger_engine.dialect.name == "postgresql"
        self._pg_engine = ledger_engine if pg else None

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        with self._threads(key):
            if self._pg_engine is not None:
                with self._pg_engine.connect() as conn:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _key_hash(key)})
                    try:
                        yield
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key_hash(key)})
                        conn.commit()
                return
            path = self.lock_dir / f"{_key_hash(key) % _BUCKETS:04d}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


class NamedLock:
    """One lock for a whole task (`reconcile --fix`), held across threads, processes on this
    machine (flock on a file of its own) and machines sharing a PostgreSQL ledger (an advisory
    lock). Kept apart from `AddressLocks`' stripes and files on purpose: its holder goes on to
    create people under address locks, and sharing a stripe or a file with one would deadlock."""

    def __init__(self, lock_dir: Path, name: str, ledger_engine: Engine | None = None) -> None:
        self.name = name
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._path = lock_dir / f"{name}.lock"
        self._thread = threading.Lock()
        pg = ledger_engine is not None and ledger_engine.dialect.name == "postgresql"
        self._pg_engine = ledger_engine if pg else None
        self._key = _key_hash("task:" + name)

    @contextmanager
    def held(self, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the lock; `waiting()` is called once when another holds it, before waiting."""
        told = False

        def tell() -> None:
            nonlocal told
            if waiting is not None and not told:
                told = True
                waiting()

        if not self._thread.acquire(blocking=False):
            tell()
            self._thread.acquire()
        try:
            if self._pg_engine is not None:
                # autocommit: the lock is the session's, and a transaction left open for the
                # whole task would hold back vacuum and meet idle_in_transaction_session_timeout
                with self._pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar():
                        tell()
                        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
                    try:
                        yield
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                return
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    tell()
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock
        finally:
            self._thread.release()
