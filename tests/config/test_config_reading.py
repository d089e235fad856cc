"""Reading config and rule files: YAML merge keys and duplicates, with their positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.engine.loader import load_rules_text
from gateway.errors import ConfigError

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
