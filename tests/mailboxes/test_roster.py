"""The roster of a source reaching many mailboxes (gateway/mailboxes/roster.py): what it reads,
when it reads again, and what it keeps when a read fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.errors import Retryable
from gateway.mailboxes.roster import Roster, RosterError, parse_roster


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_roster_file_is_one_address_a_line_comments_blanks_and_repeats_dropped() -> None:
    text = "# sales team\nAnna@Example.com\n\n  bob@example.com  # on leave in May\nanna@example.com\n#carl@example.com\n"
    assert parse_roster(text) == ["anna@example.com", "bob@example.com"]


def test_the_three_sources_of_names_are_merged_once_each(tmp_path: Path) -> None:
    f = tmp_path / "mailboxes.txt"
    f.write_text("b@example.com\nc@example.com\n")
    roster = Roster(["A@example.com", "b@example.com"], f, lambda: ["c@example.com", "D@example.com"])
    assert roster.mailboxes() == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    assert roster.status()["roster_size"] == 4 and roster.status()["roster_error"] == ""


def test_the_directory_is_asked_again_only_when_the_refresh_is_due() -> None:
    clock, asked = Clock(), []
    members = ["a@example.com"]

    def directory() -> list[str]:
        asked.append(1)
        return list(members)

    roster = Roster(directory=directory, refresh=300, clock=clock)
    assert roster.mailboxes() == ["a@example.com"]
    members.append("b@example.com")
    clock.now = 299
    assert roster.mailboxes() == ["a@example.com"] and len(asked) == 1
    clock.now = 300
    assert roster.mailboxes() == ["a@example.com", "b@example.com"] and len(asked) == 2


def test_an_edited_file_is_read_again_at_once(tmp_path: Path) -> None:
    f = tmp_path / "mailboxes.txt"
    f.write_text("a@example.com\nb@example.com\n")
    roster = Roster(file=f, refresh=3600, clock=Clock())
    assert roster.mailboxes() == ["a@example.com", "b@example.com"]
    f.write_text("b@example.com\nc@example.com\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a coarse clock: the mtime surely moves
    assert roster.mailboxes() == ["b@example.com", "c@example.com"]


def test_a_failed_refresh_keeps_the_last_list_and_says_why() -> None:
    clock, fail = Clock(), [False]

    def directory() -> list[str]:
        if fail[0]:
            raise Retryable("Graph unreachable while reading the members of the group sales")
        return ["a@example.com"]

    roster = Roster(directory=directory, refresh=10, clock=clock)
    assert roster.mailboxes() == ["a@example.com"]
    fail[0], clock.now = True, 10
    assert roster.mailboxes() == ["a@example.com"]
    assert "Graph unreachable" in roster.status()["roster_error"]
    fail[0], clock.now = False, 20
    assert roster.mailboxes() == ["a@example.com"] and roster.status()["roster_error"] == ""


def test_a_failed_first_read_is_raised_with_the_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(RosterError, match=f"mailboxes_file {missing}: no such file"):
        Roster(file=missing).mailboxes()
    with pytest.raises(RosterError, match="is a directory"):
        Roster(file=tmp_path).mailboxes()
    roster = Roster(directory=lambda: (_ for _ in ()).throw(Retryable("directory down")))
    with pytest.raises(Retryable, match="directory down"):
        roster.mailboxes()
    assert roster.known() == []


def test_a_file_removed_while_running_keeps_the_last_list(tmp_path: Path) -> None:
    f = tmp_path / "mailboxes.txt"
    f.write_text("a@example.com\n")
    roster = Roster(file=f, clock=Clock())
    assert roster.mailboxes() == ["a@example.com"]
    f.unlink()
    assert roster.mailboxes() == ["a@example.com"]
    assert "no such file" in roster.status()["roster_error"]


def test_a_file_read_again_does_not_hide_a_failing_directory(tmp_path: Path) -> None:
    f = tmp_path / "mailboxes.txt"
    f.write_text("a@example.com\n")
    clock, down = Clock(), [False]

    def directory() -> list[str]:
        if down[0]:
            raise Retryable("directory down")
        return ["b@example.com"]

    roster = Roster(file=f, directory=directory, refresh=10, clock=clock)
    assert roster.mailboxes() == ["a@example.com", "b@example.com"]
    down[0], clock.now = True, 10
    assert roster.mailboxes() == ["a@example.com", "b@example.com"] and roster.error == "directory down"
    f.write_text("c@example.com\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert roster.mailboxes() == ["c@example.com", "b@example.com"] and roster.error == "directory down"
