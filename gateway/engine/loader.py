"""Rule files → a validated, frozen RuleSet; every mistake reported as FILE:LINE:COL: message.

Files matched by the configured patterns load in name order (so `automated.yaml` runs before
`folders.yaml`), rules in file order. Validation never stops at the first problem.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.engine.actions import ACTIONS, Action
from gateway.engine.conditions import Condition, parse_condition
from gateway.engine.model import OnError
from gateway.errors import RuleError
from gateway.reading.boundedread import RULES_MAX, RULES_TOTAL_MAX, UnreadableFile, read_bounded
from gateway.reading.foldernames import folder_problem
from gateway.reading.yamlpos import Checker, Problem, YamlSyntaxError, compose, did_you_mean, position

RULE_KEYS = ("name", "description", "when", "then", "on_error")
MAX_MATCHES = 1000  # files one pattern may name: a pattern matching more is a mistake


@dataclass(frozen=True)
class Rule:
    name: str
    file: str  # as shown in messages: relative to the base directory when under it
    line: int
    col: int
    when: Condition | None
    then: tuple[Action, ...]
    on_error: OnError | None = None
    description: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    files: tuple[str, ...]
    loaded_at: datetime
    fingerprint: str  # sha256 over the files' names and contents, in load order
    patterns: tuple[str, ...] = field(default=())

    def names(self) -> list[str]:
        return [r.name for r in self.rules]


def resolve_files(patterns: Sequence[str | Path], base_dir: Path) -> tuple[list[Path], list[str]]:
    """The files the patterns match, in name order, and a problem per pattern matching nothing."""
    found: dict[Path, None] = {}
    problems: list[str] = []
    for pattern in patterns:
        p = Path(pattern)
        full = p if p.is_absolute() else base_dir / p
        if glob.has_magic(str(pattern)):
            # lazily, and stop past the cap: a broad `**` must not list a whole tree first
            listed = list(itertools.islice(glob.iglob(str(full), recursive=True), MAX_MATCHES * 10 + 1))
            hits = [Path(h) for h in listed if Path(h).is_file()]
            if len(listed) > MAX_MATCHES * 10 or len(hits) > MAX_MATCHES:
                problems.append(f"{pattern}: matches more than {MAX_MATCHES} files (narrow the pattern)")
                hits = []
            elif not hits:
                problems.append(f"{pattern}: no rule files match")
        elif full.is_file():
            hits = [full]
        else:
            problems.append(f"{pattern}: no such rule file")
            hits = []
        for h in hits:
            found.setdefault(h.resolve(), None)
    return sorted(found, key=lambda f: (f.name, str(f))), problems


def display_name(path: Path, base_dir: Path) -> str:
    try:
        return os.path.relpath(path, base_dir.resolve()) if path.is_relative_to(base_dir.resolve()) else str(path)
    except ValueError:
        return str(path)


class _Validator:
    """Parses files in order, sharing what crosses files (rule names, find/create seen)."""

    def __init__(self, watched_folders: Sequence[str], labels_are_folders: bool) -> None:
        self.watched = tuple(watched_folders)
        self.labels_are_folders = labels_are_folders
        self.names: dict[str, str] = {}  # rule name → where it was first defined
        self.records_provided = False  # a find/create ran in this or an earlier rule
        self.problems: list[Problem] = []
        self.rules: list[Rule] = []

    def file(self, name: str, text: str) -> None:
        chk = Checker(name, watched_folders=self.watched, labels_are_folders=self.labels_are_folders)
        try:
            root = compose(text)
        except YamlSyntaxError as exc:
            self.problems.append(Problem(name, exc.line, exc.col, exc.message))
            return
        if root is not None:
            self._root(root, chk)
        self.problems.extend(sorted(chk.problems, key=lambda p: (p.line, p.col)))

    def _root(self, root: Node, chk: Checker) -> None:
        pairs = chk.mapping(root, "a rule file")
        if pairs is None:
            return
        keys = chk.keys(pairs, ("rules",), "the rule file", required=("rules",), at=root)
        rules = keys.get("rules")
        if rules is None or (isinstance(rules, ScalarNode) and rules.tag.endswith(":null")):
            return
        if not isinstance(rules, SequenceNode):
            chk.error(rules, "rules must be a list of rules")
            return
        for item in rules.value:
            rule = self._rule(item, chk)
            if rule is not None:
                self.rules.append(rule)

    def _rule(self, node: Node, chk: Checker) -> Rule | None:
        pairs = chk.mapping(node, "a rule")
        if pairs is None:
            return None
        before = len(chk.problems)
        keys = chk.keys(pairs, RULE_KEYS, "a rule", required=("name", "then"), at=node)
        name = chk.string(keys["name"], "name") if "name" in keys else None
        if name is not None:
            line, col = position(keys["name"])
            if name in self.names:
                chk.error(keys["name"], f"duplicate rule name '{name}' (first defined at {self.names[name]})")
            else:
                self.names[name] = f"{chk.file}:{line}:{col}"
        description = ""
        if "description" in keys:
            description = chk.string(keys["description"], "description") or ""
        when = parse_condition(keys["when"], chk) if "when" in keys else None
        then = self._actions(keys["then"], chk, "then") if "then" in keys else []
        on_error = self._on_error(keys["on_error"], chk) if "on_error" in keys else None
        if len(chk.problems) > before or name is None:
            return None
        line, col = position(node)
        return Rule(name, chk.file, line, col, when, tuple(then), on_error, description)

    def _actions(self, node: Node, chk: Checker, what: str, *, on_error: bool = False) -> list[Action]:
        if isinstance(node, MappingNode) and on_error:
            items: list[Node] = [
                MappingNode("tag:yaml.org,2002:map", [pair], pair[0].start_mark, pair[1].end_mark) for pair in node.value
            ]
        elif isinstance(node, SequenceNode):
            items = list(node.value)
        else:
            chk.error(node, f"{what} must be a list of actions")
            return []
        out: list[Action] = []
        for item in items:
            if isinstance(item, ScalarNode):
                key_node, value_node = item, None
            elif isinstance(item, MappingNode) and len(item.value) == 1:
                key_node, value_node = item.value[0]
            elif isinstance(item, MappingNode):
                names = ", ".join(str(k.value) for k, _ in item.value)
                chk.error(item, f"an action is one key, found {len(item.value)}: {names} (write each as its own list item)")
                continue
            else:
                chk.error(item, f"{what}: expected an action, not a list")
                continue
            name = str(key_node.value)
            cls = ACTIONS.get(name)
            if cls is None:
                chk.error(key_node, f"unknown action '{name}'{did_you_mean(name, ACTIONS)}")
                continue
            if on_error and not cls.on_error_ok:
                chk.error(key_node, f"only tag, untag and move are allowed in on_error, not '{name}'")
                continue
            if cls.needs_records and not self.records_provided:
                chk.error(key_node, f"{name}: no find or create precedes it (in this rule or an earlier one)")
            if cls.provides_records:
                self.records_provided = True
            act = cls.parse(value_node, chk)
            if act is not None and act.key == "move" and isinstance(act.options, str):
                bad = folder_problem(act.options)
                if bad:
                    chk.error(value_node if value_node is not None else key_node, bad)
                    continue
            if act is not None:
                out.append(act)
        return out

    def _on_error(self, node: Node, chk: Checker) -> OnError | None:
        actions = self._actions(node, chk, "on_error", on_error=True)
        tags: list[str] = []
        untags: list[str] = []
        move = None
        for a in actions:
            if a.key == "tag":
                tags += list(a.options)
            elif a.key == "untag":
                untags += list(a.options)
            elif a.key == "move":
                move = a.options
        return OnError(tags=tuple(tags), untags=tuple(untags), move=move)


def check_rules_text(
    files: Sequence[tuple[str, str]], *, watched_folders: Sequence[str] = (), labels_are_folders: bool = False
) -> tuple[list[Rule], list[str]]:
    """Validate (display name, text) pairs in the order given: the rules and every problem."""
    v = _Validator(watched_folders, labels_are_folders)
    for name, text in files:
        v.file(name, text)
    return v.rules, [str(p) for p in v.problems]


def load_rules(
    patterns: Sequence[str | Path], *, base_dir: Path, watched_folders: Sequence[str] = (), labels_are_folders: bool = False
) -> RuleSet:
    """Load and validate the rule files; RuleError with every problem (FILE:LINE:COL: message)."""
    base_dir = Path(base_dir)
    paths, problems = resolve_files(patterns, base_dir)
    files: list[tuple[str, str]] = []
    digest = hashlib.sha256()
    total = 0
    for path in paths:
        name = display_name(path, base_dir)
        try:
            data = read_bounded(path, RULES_MAX)  # a regular file of bounded size only
            total += len(data)
            if total > RULES_TOTAL_MAX:
                problems.append(f"{name}:1:1: the rule files together are over {RULES_TOTAL_MAX} bytes: none is read")
                files = []
                break
            text = data.decode("utf-8")
        except (UnreadableFile, UnicodeDecodeError) as exc:
            problems.append(f"{name}:1:1: cannot read: {exc}")
            continue
        digest.update(name.encode() + b"\0" + data + b"\0")
        files.append((name, text))
    rules, found = check_rules_text(files, watched_folders=watched_folders, labels_are_folders=labels_are_folders)
    problems += found
    if problems:
        n = len(problems)
        raise RuleError(f"{n} problem{'s' if n != 1 else ''} in the rule files", problems=problems)
    return RuleSet(
        rules=tuple(rules),
        files=tuple(name for name, _ in files),
        loaded_at=datetime.now(UTC),
        fingerprint=digest.hexdigest(),
        patterns=tuple(str(p) for p in patterns),
    )


def load_rules_text(text: str, name: str = "rules.yaml", **kwargs: object) -> RuleSet:
    """One rule file given as text (tests, `test-rules` with an inline rule)."""
    rules, problems = check_rules_text([(name, text)], **kwargs)  # type: ignore[arg-type]
    if problems:
        raise RuleError(f"{len(problems)} problem(s) in {name}", problems=problems)
    return RuleSet(
        tuple(rules), (name,), datetime.now(UTC), hashlib.sha256(name.encode() + b"\0" + text.encode() + b"\0").hexdigest()
    )
