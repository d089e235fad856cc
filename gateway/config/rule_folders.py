"""`check`'s warning for a `folder:` condition that names a folder no source watches.

Such a rule is valid (a source may watch the folder later, or `test-rules --folder` may
pretend), so this is a warning and `check` still exits 0; but a typo (`VLeds`) would
otherwise make a rule silently never match.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.config.model import Config
from gateway.engine.loader import display_name
from gateway.reading.yamlpos import YamlSyntaxError, compose, did_you_mean, position


def watched_folders(config: Config) -> list[str]:
    out: list[str] = []
    for source in config.sources:
        out.extend(f for f in source.folders if f not in out)
    return out


def _when_nodes(root: Node) -> Iterator[Node]:
    """The `when` node of every rule in a rule file's tree."""
    if not isinstance(root, MappingNode):
        return
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "rules" and isinstance(value, SequenceNode):
            for rule in value.value:
                if isinstance(rule, MappingNode):
                    yield from (v for k, v in rule.value if isinstance(k, ScalarNode) and k.value == "when")


def _folder_values(node: Node) -> Iterator[ScalarNode]:
    """Every folder name a condition tree tests (under all/any/not, however nested)."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "folder":
                items = value.value if isinstance(value, SequenceNode) else [value]
                yield from (v for v in items if isinstance(v, ScalarNode) and v.value)
            else:
                yield from _folder_values(value)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _folder_values(item)


def unwatched_folder_warnings(config: Config, files: Sequence[Path]) -> list[str]:
    """`FILE:LINE:COL: warning: …` for each folder condition no configured source can meet."""
    watched = watched_folders(config)
    known = set(watched)
    warnings: list[str] = []
    for path in files:
        try:
            root = compose(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, YamlSyntaxError):
            continue  # the rule loader reports these as errors
        if root is None:
            continue
        name = display_name(path, config.base_dir)
        for when in _when_nodes(root):
            for node in _folder_values(when):
                folder = node.value
                if folder in known or (folder.upper() == "INBOX" and any(f.upper() == "INBOX" for f in known)):
                    continue
                line, col = position(node)
                warnings.append(
                    f"{name}:{line}:{col}: warning: folder '{folder}' is not watched by any source"
                    f"{did_you_mean(folder, watched)}; watched folders: {', '.join(watched) or 'none'}"
                )
    return warnings
