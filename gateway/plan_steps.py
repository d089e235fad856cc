"""The names the journal gives a Plan's steps, shared by the one-message path, the batch path
and what a person decides."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.crm.base import PartyRef
from gateway.engine.model import Plan

CRM_DONE = "crm_done"  # journal mark: every CRM step of the Plan is done


def steps_of(plan: Plan) -> list[str]:
    return [c.key for c in plan.creates] + (["attach"] if plan.attach is not None else [])


def targets_of(plan: Plan, created: Mapping[str, PartyRef]) -> list[PartyRef]:
    """The records the Plan attaches the mail to, once each: found ones and those it created."""
    targets: list[PartyRef] = []
    for t in plan.attach.targets if plan.attach is not None else ():
        ref = t.ref or created.get(t.create_key or "")
        if ref is not None and all((ref.kind, ref.id) != (x.kind, x.id) for x in targets):
            targets.append(ref)
    return targets


def evaluated_note(plan: Plan) -> str:
    return "evaluated: " + (", ".join(plan.touched) or "no rule touched it")
