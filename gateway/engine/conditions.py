"""Condition kinds (RULES.md "Conditions"), one small class each, registered by YAML key.

Each class parses its YAML value (reporting problems with positions through a `Checker`),
evaluates to `(held, why)` — the `why` goes into the trace — and describes its JSON Schema.
A `when` mapping with several keys holds when all of them hold.

The registry and the base class are in condition_base.py, the match tests in
condition_match.py; the kinds in conditions_context.py (folder, source, mailbox, direction,
tagged, known), conditions_headers.py (addresses, subject, body, header, exists),
conditions_content.py (size, attachments, automated, forwarded) and conditions_logic.py (all,
any, not, and parsing a `when`). Importing this module registers them all.
"""

from __future__ import annotations

from gateway.engine import conditions_content, conditions_context, conditions_headers, conditions_logic
from gateway.engine.condition_base import CONDITIONS, Condition, check, condition
from gateway.engine.condition_match import Match, match_schema, parse_match
from gateway.engine.conditions_content import AUTOMATED_KINDS
from gateway.engine.conditions_headers import ADDRESS_KEYS
from gateway.engine.conditions_logic import evaluate_when, parse_condition

KINDS = (conditions_context, conditions_headers, conditions_content, conditions_logic)  # registrations

__all__ = [
    "ADDRESS_KEYS",
    "AUTOMATED_KINDS",
    "CONDITIONS",
    "KINDS",
    "Condition",
    "Match",
    "check",
    "condition",
    "evaluate_when",
    "match_schema",
    "parse_condition",
    "parse_match",
]
