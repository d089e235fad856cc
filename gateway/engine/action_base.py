"""The action registry and what every action kind shares: the `Action` base class, its
options model (`Args`, strict pydantic), and parsing a YAML node into an action with errors
mapped back to the node's line and column. The kinds themselves live in actions_*.py;
gateway/engine/actions.py assembles them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from yaml.nodes import Node, ScalarNode

from gateway.crm.base import PARTY_KINDS
from gateway.engine.state import WHO
from gateway.reading.yamlpos import Checker, did_you_mean, is_null, kind_name, node_at, to_python

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation

__all__ = ["ACTIONS", "Action", "Args", "Who", "action"]

ACTIONS: dict[str, type[Action]] = {}


def action(key: str) -> Callable[[type[Action]], type[Action]]:
    """Register an action class under its YAML key; a duplicate fails at import."""

    def decorate(cls: type[Action]) -> type[Action]:
        if key in ACTIONS:
            raise RuntimeError(f"action {key!r} registered twice")
        cls.key = key
        ACTIONS[key] = cls
        return cls

    return decorate


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Action:
    key: ClassVar[str] = ""
    Options: ClassVar[type[Args] | None] = None  # None: the value is parsed by `parse_value`
    shorthand: ClassVar[str | None] = None  # `skip: TEXT` means `skip: {reason: TEXT}`
    provides_records: ClassVar[bool] = False  # find/create: an attach may follow
    needs_records: ClassVar[bool] = False  # attach
    on_error_ok: ClassVar[bool] = False  # allowed in on_error

    def __init__(self, options: Any) -> None:
        self.options = options

    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if cls.Options is None:
            raise NotImplementedError
        return _parse_options(cls, node, chk)

    @classmethod
    def check_options(cls, options: Any, node: Node | None, chk: Checker) -> None:
        """Checks the options model cannot express, reported through `chk`."""

    def apply(self, ev: Evaluation) -> str:
        """Change the evaluation; return what happened, for the trace."""
        raise NotImplementedError

    @classmethod
    def schema(cls) -> dict[str, Any]:
        assert cls.Options is not None
        s = cls.Options.model_json_schema()
        s.pop("title", None)
        for prop in s.get("properties", {}).values():
            prop.pop("title", None)
        if not s.get("required"):
            s = {"oneOf": [s, {"type": "null"}]}
        if cls.shorthand:
            s = {"oneOf": [s, {"type": "string"}]}
        return s


def _parse_options(cls: type[Action], node: Node | None, chk: Checker) -> Action | None:
    assert cls.Options is not None
    what = cls.key
    if node is None or is_null(node):
        value: Any = {}
    elif isinstance(node, ScalarNode) and cls.shorthand and node.tag != "tag:yaml.org,2002:bool":
        value = {cls.shorthand: node.value}
    else:
        value = to_python(node)
        if not isinstance(value, dict):
            assert node is not None
            chk.error(node, f"{what} takes a mapping of options, not {kind_name(node)}")
            return None
    try:
        options = cls.Options.model_validate(value)
    except ValidationError as exc:
        assert node is not None or not value
        for err in exc.errors():
            _report(chk, cls, node, err)
        return None
    problems_before = len(chk.problems)
    cls.check_options(options, node, chk)
    if len(chk.problems) > problems_before:
        return None
    return cls(options)


def _report(chk: Checker, cls: type[Action], node: Node | None, err: Any) -> None:
    loc = [p for p in err["loc"] if isinstance(p, (str, int))]
    what = cls.key
    assert cls.Options is not None
    fields = list(cls.Options.model_fields)
    if node is None:
        return
    if err["type"] == "extra_forbidden":
        name = str(loc[-1])
        chk.error(node_at(node, loc, key=True), f"unknown option '{name}' for {what}{did_you_mean(name, fields)}")
        return
    target = node_at(node, loc)
    field = str(loc[0]) if loc else ""
    if err["type"] == "missing":
        chk.error(node, f"{what}: missing '{field}'")
    elif err["type"] == "literal_error":
        allowed = [str(v).strip("'") for v in re.findall(r"'([^']*)'", err["ctx"]["expected"])]
        bad = err["input"]
        if field in ("kind", "kinds"):
            chk.error(target, f"unknown record kind '{bad}'{did_you_mean(str(bad), PARTY_KINDS)}")
        else:
            chk.error(target, f"{what}.{field}: '{bad}' is not one of {', '.join(allowed)}{did_you_mean(str(bad), allowed)}")
    else:
        hint = ""
        if isinstance(err.get("input"), dict) and field == "fields":
            hint = " (quote templates: '{from.name}')"
        path = ".".join(str(p) for p in loc)
        chk.error(target, f"{what}.{path}: {err['msg']}{hint}")


Who = Literal["sender", "counterpart", "recipients", "participants", "original_sender"]
assert set(Who.__args__) == set(WHO)  # type: ignore[attr-defined]
