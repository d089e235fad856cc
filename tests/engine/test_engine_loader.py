"""Rule file loading and validation: every problem as FILE:LINE:COL: message, all reported."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from gateway.engine.actions import ACTIONS, action
from gateway.engine.conditions import CONDITIONS, condition
from gateway.engine.loader import load_rules
from gateway.engine.model import OnError
from gateway.engine.schema import json_schema
from gateway.errors import RuleError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "rules" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(tmp_path: Path, **kw: object) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rules(["rules/*.yaml"], base_dir=tmp_path, **kw)  # type: ignore[arg-type]
    return info.value.problems


def test_several_mistakes_in_one_file_all_reported_with_positions(tmp_path: Path) -> None:
    write(
        tmp_path,
        "folders.yaml",
        """
        rules:
          - name: Leads
            when: {folder: VLeads, subjct: x}
            then:
              - find: {who: sendr, kinds: [lead, contacts]}
              - create: {kind: lead}
              - atach: {}
              - attach: {to: found, tread: true}
          - name: Regex
            when:
              from: {regex: "a(b"}
            then:
              - skip: {reason: 5}
              - stop: now
            on_error: [tag: [E], create: {kind: lead}]
            extra: 1
          - name: Sizes
            when: {size: {over: 10XB}, automated: [autoreply], direction: in}
            then: [stop]
        """,
    )
    assert problems(tmp_path) == [
        "rules/folders.yaml:3:28: unknown condition 'subjct' (did you mean 'subject'?)",
        "rules/folders.yaml:5:21: find.who: 'sendr' is not one of sender, counterpart, recipients, participants, original_sender"
        " (did you mean 'sender'?)",
        "rules/folders.yaml:5:42: unknown record kind 'contacts' (did you mean 'contact'?)",
        "rules/folders.yaml:7:9: unknown action 'atach' (did you mean 'attach'?)",
        "rules/folders.yaml:8:29: unknown option 'tread' for attach (did you mean 'thread'?)",
        "rules/folders.yaml:11:21: bad regex 'a(b': missing ): a(b",
        "rules/folders.yaml:13:24: skip.reason: Input should be a valid string",
        "rules/folders.yaml:14:15: stop takes no options, not 'now'",
        "rules/folders.yaml:15:26: only tag, untag and move are allowed in on_error, not 'create'",
        "rules/folders.yaml:16:5: unknown key 'extra' in a rule",
        "rules/folders.yaml:18:25: size.over: expected a size like 10MB or 512KB, not '10XB'",
        "rules/folders.yaml:18:44: automated: 'autoreply' is not one of auto_reply, bounce, list, bulk"
        " (did you mean 'auto_reply'?)",
        "rules/folders.yaml:18:67: direction: 'in' is not one of inbound, outbound",
    ]


def test_duplicate_rule_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - name: Leads\n    then: [stop]\n")
    write(tmp_path, "b.yaml", "rules:\n  - {name: Other, then: [stop]}\n  - name: Leads\n    then: [stop]\n")
    assert problems(tmp_path) == ["rules/b.yaml:3:11: duplicate rule name 'Leads' (first defined at rules/a.yaml:2:11)"]


def test_attach_needs_a_find_or_create_in_this_or_an_earlier_rule(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - name: early\n    then: [tag: X, attach: {}]\n")
    write(tmp_path, "b.yaml", "rules:\n  - name: finds\n    then: [find: {}]\n  - name: later\n    then: [attach: {}]\n")
    assert problems(tmp_path) == ["rules/a.yaml:3:20: attach: no find or create precedes it (in this rule or an earlier one)"]


def test_tag_named_like_a_watched_folder_on_gmail(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - name: t\n    then: [tag: [Synced, VLeads]]\n")
    kw = {"watched_folders": ["VLeads"]}
    assert load_rules(["rules/*.yaml"], base_dir=tmp_path, **kw).names() == ["t"]  # type: ignore[arg-type]
    [p] = problems(tmp_path, labels_are_folders=True, **kw)
    assert p.startswith("rules/a.yaml:3:26: tag 'VLeads' is the watched folder 'VLeads'")


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - name: x\n    then: [stop\n  - name: y\n")
    [p] = problems(tmp_path)
    assert p.startswith("rules/a.yaml:4:9: YAML syntax error: did not find expected ',' or ']'")


def test_shapes_and_missing_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        """
        rules:
          - when: {folder: [a, b]}
            then: [{find: {}, attach: {}}, create: {who: sender}]
          - name: n
            when: {header: {contains: x}, all: {folder: x}, folder: []}
            then: [tag: []]
        """,
    )
    assert problems(tmp_path) == [
        "rules/a.yaml:2:5: a rule: missing 'name'",
        "rules/a.yaml:3:12: an action is one key, found 2: find, attach (write each as its own list item)",
        "rules/a.yaml:3:44: create: missing 'kind'",
        "rules/a.yaml:5:20: header: missing 'name'",
        "rules/a.yaml:5:40: all takes a non-empty list of conditions, not a mapping",
        "rules/a.yaml:5:61: folder must not be an empty list",
        "rules/a.yaml:6:17: tag must not be an empty list",
    ]


def test_missing_files_and_non_matching_globs(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as info:
        load_rules(["nope.yaml", "none/*.yaml"], base_dir=tmp_path)
    assert info.value.problems == ["nope.yaml: no such rule file", "none/*.yaml: no rule files match"]


def test_ruleset_is_frozen_with_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "rules:\n  - name: x\n    then: [stop]\n    on_error: {tag: E, move: Errors}\n")
    one = load_rules(["rules/*.yaml"], base_dir=tmp_path)
    assert one.rules[0].on_error == OnError(tags=("E",), move="Errors")
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.rules = ()  # type: ignore[misc]
    path.write_text(path.read_text() + "# changed\n")
    assert load_rules(["rules/*.yaml"], base_dir=tmp_path).fingerprint != one.fingerprint


def test_registries_refuse_duplicates() -> None:
    with pytest.raises(RuntimeError):
        condition("folder")(type("X", (), {}))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        action("attach")(type("X", (), {}))  # type: ignore[arg-type]


def test_schema_covers_every_condition_and_action() -> None:
    schema = json_schema()
    json.dumps(schema)
    assert set(schema["$defs"]["condition"]["properties"]) == set(CONDITIONS)
    named = {k for item in schema["$defs"]["action"]["oneOf"] for k in item.get("properties", {})}
    assert named == set(ACTIONS)
    find = next(i for i in schema["$defs"]["action"]["oneOf"] if "find" in i.get("properties", {}))
    assert "pick" in json.dumps(find)


def test_shipped_packs_load() -> None:
    rs = load_rules(["rules/*.yaml"], base_dir=ROOT, watched_folders=["VLeads", "VContacts", "VAccounts", "CRM sync"])
    assert {"Leads folder", "Contacts folder", "Accounts folder", "CRM sync folder"} <= set(rs.names())
