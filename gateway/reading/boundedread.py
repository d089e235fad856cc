"""Reading the files a config names (itself, `*_file` secrets, rule files) with a bound.

A config can point anywhere: at `/dev/zero` (endless), a FIFO (blocks until a writer comes),
a directory, or a huge file. Only a regular file is read, and only up to a size cap, so a
mistake is reported instead of filling memory or hanging `check` and `run`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Far above any real file, and low enough that parsing stays well under a CPU second or two
# (the YAML composer takes seconds per megabyte).
CONFIG_MAX = 256 * 1024  # a config file
RULES_MAX = 256 * 1024  # one rule file
RULES_TOTAL_MAX = 512 * 1024  # all rule files together
SECRET_MAX = 64 * 1024  # a password, token or key file


class UnreadableFile(ValueError):
    """The file is not a readable regular file within the cap; the message says why."""


class MissingFile(UnreadableFile):
    """There is no file at that path."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; UnreadableFile otherwise.

    O_NONBLOCK makes opening a FIFO return at once (a plain open waits for a writer);
    the type is then checked on the open descriptor, so a swap between check and read
    cannot slip a device in. The read stops at limit+1 bytes whatever the size says
    (a file growing meanwhile, or a /proc file reporting 0)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingFile("no such file") from None
    except IsADirectoryError:
        raise UnreadableFile("is a directory, not a file") from None
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(f"is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise UnreadableFile(f"is {st.st_size} bytes, over the limit of {limit}")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            try:
                chunk = os.read(fd, min(65536, limit + 1 - total))
            except OSError as exc:
                if exc.errno == errno.EISDIR:
                    raise UnreadableFile("is a directory, not a file") from None
                raise UnreadableFile(exc.strerror or str(exc)) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UnreadableFile(f"is over the limit of {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text_bounded(path: str | Path, limit: int) -> str:
    """As read_bounded, decoded as UTF-8 (UnicodeDecodeError is left to the caller)."""
    return read_bounded(path, limit).decode("utf-8")
