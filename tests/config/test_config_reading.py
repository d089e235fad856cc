"""Reading config and rule files: bounded reads, YAML merge keys and duplicates, folder names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.engine.loader import load_rules_text
from gateway.errors import ConfigError
from gateway.reading.boundedread import UnreadableFile, read_bounded
from gateway.reading.foldernames import folder_problem

BASE = """\
crm: {backend: sql, url: 'sqlite:///var/crm.db'}
sources:
  - &maildir {name: zero, type: maildir, path: var/mail, folders: [VLeads]}
  - {<<: *maildir, name: one}
  - <<: *maildir
    name: two
    folders: [VContacts]
    pol_interval: 3
"""


def test_merge_keys_apply_with_the_own_keys_winning_and_positions_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BASE)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}:8:5: unknown key 'sources.2.pol_interval' (did you mean 'poll_interval'?)"]
    path.write_text(BASE.replace("    pol_interval: 3\n", ""))
    cfg = load_config(path)
    assert [(s.name, s.folders) for s in cfg.sources] == [("zero", ["VLeads"]), ("one", ["VLeads"]), ("two", ["VContacts"])]


def test_a_merge_key_in_a_rule_file_works_like_in_yaml() -> None:
    text = "rules:\n  - &base {name: A, when: {folder: VLeads}, then: [stop]}\n  - {<<: *base, name: B}\n"
    assert load_rules_text(text).names() == ["A", "B"]


def test_duplicate_keys_are_refused_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("crm: {backend: sql}\nretry:\n  max_attempts: 3\n  max_attempts: 4\nsources: []\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}:4:3: duplicate key 'max_attempts' (first at line 3)"]


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
