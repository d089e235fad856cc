"""Reading what people write: files read with a bound, folder names that are names, not paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.reading.boundedread import UnreadableFile, read_bounded
from gateway.reading.foldernames import folder_problem


def test_read_bounded_refuses_a_fifo_at_once_and_reads_a_small_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile, match="FIFO"):
        read_bounded(fifo, 100)
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert read_bounded(tmp_path / "f", 100) == b"x" * 100
    with pytest.raises(UnreadableFile, match="over the limit"):
        read_bounded(tmp_path / "f", 99)
    with pytest.raises(UnreadableFile, match="device"):
        read_bounded("/dev/zero", 100)


@pytest.mark.parametrize("name", ["INBOX/Sales", "INBOX.Sales", "CRM sync", "[Gmail]/All Mail", "a..b", "\\Sent"])
def test_imap_hierarchies_are_folder_names(name: str) -> None:
    assert folder_problem(name) is None


@pytest.mark.parametrize("name", ["..", "../x", "INBOX/../x", "/etc", "\\..\\x", "C:\\x", "~/x", "a\x00b", ""])
def test_paths_are_not_folder_names_anywhere(name: str) -> None:
    assert folder_problem(name) is not None
    assert folder_problem(name, maildir=True) is not None


@pytest.mark.parametrize("name", ["a//b", "./x", "a/", "a\\b", "\\Sent"])
def test_a_maildir_folder_name_is_one_clean_relative_path(name: str) -> None:
    assert folder_problem(name, maildir=True) is not None
