"""gateway/engine/facts.py: what the rules can do to a mailbox, as plain facts with places."""

from __future__ import annotations

from pathlib import Path

from gateway.engine.facts import RuleFacts, rule_facts
from gateway.engine.loader import load_rules

RULES = """\
rules:
  - name: File it
    when: {folder: VLeads}
    then:
      - tag: [Synced, "CRM sync"]
      - move: Filed
  - name: Mark
    then:
      - untag: Old
      - tag: Seen
    on_error:
      tag: Broken
"""


def test_tags_with_where_their_names_are_written_and_the_rules_that_move(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text(RULES)
    rules = load_rules(["rules/*.yaml"], base_dir=tmp_path)
    facts = rule_facts(rules, tmp_path)
    assert facts.tags == (
        ("Synced", "rules/a.yaml:5:15"),
        ("CRM sync", "rules/a.yaml:5:23"),
        ("Seen", "rules/a.yaml:10:14"),
        ("Broken", "rules/a.yaml:12:12"),
    )
    assert facts.movers == ("'File it' (rules/a.yaml:2:5)",)


def test_the_places_are_those_the_engines_own_label_check_names(tmp_path: Path) -> None:
    """RULES.md: on Gmail a tag named like a watched folder is an error at the tag's name; the
    facts place each tag where that check would."""
    from gateway.engine.loader import check_rules_text

    (tmp_path / "a.yaml").write_text(RULES)
    for tag, where in rule_facts(load_rules(["a.yaml"], base_dir=tmp_path), tmp_path).tags:
        _, problems = check_rules_text([("a.yaml", RULES)], watched_folders=[tag], labels_are_folders=True)
        assert problems[0].startswith(f"{where}: tag '{tag}' is the watched folder"), problems


def test_a_rule_file_gone_since_loading_gives_no_tags(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULES)
    rules = load_rules(["a.yaml"], base_dir=tmp_path)
    (tmp_path / "a.yaml").unlink()
    assert rule_facts(rules, tmp_path) == RuleFacts((), ("'File it' (a.yaml:2:5)",))
