"""evaluate(message, ctx, rules, crm) → Plan: pure except for CRM lookups.

Every rule whose `when` holds runs its `then` in order; `stop` and `skip` end evaluation.
Outcomes: "ignored" (no rule touched the message), "skipped" (a skip: nothing planned is
executed), "review" (a person must pick: ambiguity, a miss with `if_none: review`, `review`),
else "done". `attach … if_none: error` raises `RuleFailure` (a `gateway.errors.Permanent`)
whose `.plan` carries the trace and `on_error`: the pipeline quarantines the message.

On "review", `creates`/`attach` hold what was planned for the addresses that were not in
doubt and `tags_add` the rule tags; the pipeline holds all of it until a person resolves.
"""

from __future__ import annotations

from gateway.engine.conditions import evaluate_when
from gateway.engine.loader import RuleSet
from gateway.engine.model import CrmView, EvalContext, OnError, Plan
from gateway.engine.state import Evaluation, RuleFailure
from gateway.message.parsing import Message

__all__ = ["evaluate", "format_plan", "RuleFailure"]


def evaluate(message: Message, ctx: EvalContext, rules: RuleSet, crm: CrmView) -> Plan:
    ev = Evaluation(message, ctx, crm)
    plan = ev.plan
    plan.on_error = OnError(tags=tuple(ctx.error_tags))
    ev.note("note", f"direction {ev.direction}; counterpart {', '.join(plan.counterparts) or '(none)'}")
    counterparts = ev.addresses("counterpart")
    if counterparts and all(ev.excluded(a) for a in counterparts):
        ev.note("skip", f"every counterpart is excluded ({', '.join(a.address for a in counterparts)})")
        ev.skip("excluded")
        return ev.finish()
    for rule in rules.rules:
        ev.rule = rule.name
        if rule.when is not None and not evaluate_when(ev, rule.when):
            ev.note("not-matched", f"rule '{rule.name}' ({rule.where}) did not match", False)
            continue
        ev.note("matched", f"rule '{rule.name}' ({rule.where}) matched" + ("" if rule.when else " (no condition)"), True)
        plan.touched.append(rule.name)
        if rule.on_error is not None:
            plan.on_error = rule.on_error
        for act in rule.then:
            detail = act.apply(ev)
            ev.note("skip" if ev.skip_reason is not None else "stop" if ev.stopped else "action", detail)
            if ev.stopped:
                break
        if ev.stopped:
            break
    ev.rule = ""
    return ev.finish()


def format_plan(plan: Plan) -> str:
    """The Plan and its trace as `test-rules` prints them."""
    out = [
        f"outcome: {plan.outcome}" + (f" ({plan.reason})" if plan.reason else ""),
        f"direction: {plan.direction}",
        f"counterparts: {', '.join(plan.counterparts) or '(none)'}",
        f"rules touched: {', '.join(plan.touched) or '(none)'}",
    ]
    if plan.found:
        out.append("found:")
        out += [
            f"  {addr}: {', '.join(r.label() + (f' {r.name!r}' if r.name else '') for r in refs)}"
            for addr, refs in plan.found.items()
        ]
    if plan.found_by_domain:
        out.append("accounts by domain:")
        out += [f"  {d}: {', '.join(r.label() for r in refs)}" for d, refs in plan.found_by_domain.items()]
    if plan.creates:
        out.append("create:")
        for c in plan.creates:
            d = c.data
            who = d.name if c.kind == "account" else " ".join(p for p in (d.first_name, d.last_name) if p)
            link = f", account {c.account.label()}" if c.account else ""
            extra = "".join(f", {k}={v!r}" for k, v in d.fields.items())
            out.append(f"  {c.key}: {c.kind} '{who}' <{c.address}>{link}, owner {d.owner or '(default)'}{extra}  [{c.rule}]")
    if plan.attach:
        targets = ", ".join(t.label() for t in plan.attach.targets)
        out.append(
            f"attach: {targets}"
            + ("" if plan.attach.attachments else " (without attachments)")
            + f"  [{', '.join(plan.attach.rules)}]"
        )
    if plan.review:
        out.append(f"review: {plan.review.reason}")
        for addr, refs in plan.review.candidates:
            out.append(f"  {addr}: candidates {', '.join(r.label() + (f' {r.name!r}' if r.name else '') for r in refs)}")
    if plan.tags_add or plan.tags_remove:
        out.append(f"tags: +{', +'.join(plan.tags_add)}" if plan.tags_add else "tags:")
        if plan.tags_remove:
            out[-1] += f" -{', -'.join(plan.tags_remove)}"
    if plan.move:
        out.append(f"move: {plan.move}")
    oe = plan.on_error
    parts = (
        ([f"tag {', '.join(oe.tags)}"] if oe.tags else [])
        + ([f"untag {', '.join(oe.untags)}"] if oe.untags else [])
        + ([f"move {oe.move}"] if oe.move else [])
    )
    out.append(f"on error: {'; '.join(parts) or '(nothing)'}")
    out.append("trace:")
    for step in plan.trace:
        mark = {True: "✓", False: "✗", None: "·"}[step.result]
        indent = "  " if step.event in ("matched", "not-matched", "note") or not step.rule else "    "
        out.append(f"{indent}{mark} {step.event}: {step.detail}")
    return "\n".join(out)
