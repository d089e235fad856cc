"""What the rules can do to a mailbox, as plain facts: the tags they can set (and where each is
written) and the rules that can move a mail.

A mailbox decides with these what its protocol makes of them (on Gmail a tag is a label, and
a label named like a watched folder files the mail there again; a server without MOVE cannot
move safely) without reading rules: the mailboxes never import the engine, the caller hands
the facts over.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.engine.loader import RuleSet
from gateway.reading.boundedread import RULES_MAX, UnreadableFile, read_bounded
from gateway.reading.yamlpos import YamlSyntaxError, compose, pairs, position


@dataclass(frozen=True)
class RuleFacts:
    tags: tuple[tuple[str, str], ...] = ()  # (tag, FILE:LINE:COL of its name) for each tag a rule can set
    movers: tuple[str, ...] = ()  # the rules that can move a mail: "'name' (FILE:LINE:COL)"


def rule_facts(rules: RuleSet, base_dir: Path) -> RuleFacts:
    """The facts of a loaded rule set; its files are read again for where each tag is written
    (a file gone or changed meanwhile gives what it holds now, a file unreadable nothing)."""
    movers = tuple(
        f"{r.name!r} ({r.where})"
        for r in rules.rules
        if any(a.key == "move" for a in r.then) or (r.on_error is not None and r.on_error.move)
    )
    tags: list[tuple[str, str]] = []
    for name in rules.files:
        try:
            root = compose(read_bounded(Path(base_dir).resolve() / name, RULES_MAX).decode("utf-8"))
        except (UnreadableFile, UnicodeDecodeError, YamlSyntaxError):
            continue
        for tag, node in _tag_names(root):
            line, col = position(node)
            tags.append((tag, f"{name}:{line}:{col}"))
    return RuleFacts(tuple(tags), movers)


def _tag_names(root: Node | None) -> Iterator[tuple[str, Node]]:
    """Every name a `tag` action sets, in `then` and in `on_error`, with its node (the files
    were validated by the loader: shapes other than the valid ones are skipped, not reported)."""
    for rule in _items(_value(root, "rules")):
        for key in ("then", "on_error"):
            actions = _value(rule, key)
            items = (
                [MappingNode("tag:yaml.org,2002:map", [pair]) for pair in pairs(actions)]
                if isinstance(actions, MappingNode)
                else _items(actions)
            )
            for item in items:
                names = _value(item, "tag")
                for node in [names] if isinstance(names, ScalarNode) else _items(names):
                    if isinstance(node, ScalarNode):
                        yield node.value, node


def _value(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    return next((v for k, v in pairs(node) if isinstance(k, ScalarNode) and k.value == key), None)


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []
