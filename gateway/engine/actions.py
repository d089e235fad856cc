"""Action kinds (RULES.md "Actions"), one small class each, registered by YAML key.

Options are pydantic models (strict, no extra keys): they validate the YAML value and give the
JSON Schema; their errors are mapped back to the YAML node's line and column. `apply` changes
the `Evaluation` and traces what it found or planned.

The registry and the base class are in action_base.py; the kinds in actions_records.py (find,
create, link_account, attach), actions_flow.py (review, tag, untag, move, assign, skip, stop)
and actions_note.py (note). Importing this module registers them all.
"""

from __future__ import annotations

from gateway.engine import actions_flow, actions_note, actions_records
from gateway.engine.action_base import ACTIONS, Action, action

KINDS = (actions_records, actions_flow, actions_note)  # imported for their registrations

__all__ = ["ACTIONS", "KINDS", "Action", "action"]
