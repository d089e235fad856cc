"""YAML with positions: compose nodes (which carry line/column marks) and check them.

Rule validation reports every problem as `FILE:LINE:COL: message` (1-based), so the loader
works on composed nodes rather than on constructed values. `Checker` collects problems for one
file; the helpers read scalars, strings, lists and mappings and say what was wrong where.

Composing and auditing are in yaml_compose.py, `Checker` in yaml_checker.py, positions by
path (for config.yaml's pydantic errors) in yaml_positions.py; this module gathers them.
"""

from __future__ import annotations

from gateway.reading.yaml_checker import Checker, Problem, did_you_mean, is_null, node_at
from gateway.reading.yaml_compose import (
    MAX_DEPTH,
    MAX_NODES,
    YamlSyntaxError,
    compose,
    kind_name,
    pairs,
    position,
    to_python,
)
from gateway.reading.yaml_positions import Mark, Positions, load_with_positions

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "Checker",
    "Mark",
    "Positions",
    "Problem",
    "YamlSyntaxError",
    "compose",
    "did_you_mean",
    "is_null",
    "kind_name",
    "load_with_positions",
    "node_at",
    "pairs",
    "position",
    "to_python",
]
