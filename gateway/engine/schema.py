"""JSON Schema of a rule file (`crm-gateway schema`), built from the two registries."""

from __future__ import annotations

from typing import Any

from gateway.engine.actions import ACTIONS
from gateway.engine.conditions import CONDITIONS, match_schema


def json_schema() -> dict[str, Any]:
    conditions = {key: cls.schema(key) for key, cls in sorted(CONDITIONS.items())}
    actions = {key: cls.schema() for key, cls in sorted(ACTIONS.items())}
    bare = sorted(k for k, s in actions.items() if _allows_null(s))
    action_items: list[dict[str, Any]] = [{"enum": bare}] + [
        {"type": "object", "properties": {k: s}, "required": [k], "additionalProperties": False} for k, s in actions.items()
    ]
    on_error_keys = sorted(k for k, cls in ACTIONS.items() if cls.on_error_ok)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://crm-mail-gateway/rules.schema.json",
        "title": "crm-mail-gateway rule file",
        "type": "object",
        "properties": {"rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}}},
        "required": ["rules"],
        "additionalProperties": False,
        "$defs": {
            "rule": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "unique across all files"},
                    "description": {"type": "string"},
                    "when": {"$ref": "#/$defs/condition"},
                    "then": {"type": "array", "items": {"$ref": "#/$defs/action"}},
                    "on_error": {
                        "oneOf": [
                            {
                                "type": "array",
                                "items": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "properties": {k: actions[k]},
                                            "required": [k],
                                            "additionalProperties": False,
                                        }
                                        for k in on_error_keys
                                    ]
                                },
                            },
                            {
                                "type": "object",
                                "properties": {k: actions[k] for k in on_error_keys},
                                "additionalProperties": False,
                            },
                        ]
                    },
                },
                "required": ["name", "then"],
                "additionalProperties": False,
            },
            "condition": {
                "type": "object",
                "description": "several keys: all of them must hold",
                "properties": conditions,
                "minProperties": 1,
                "additionalProperties": False,
            },
            "action": {"oneOf": action_items},
            "address_match": match_schema(True),
            "text_match": match_schema(False),
        },
    }


def _allows_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null":
        return True
    return any(_allows_null(s) for s in schema.get("oneOf", []))
