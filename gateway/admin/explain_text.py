"""`explain` in words: the document `operations.explain_doc` makes, as the CLI prints it."""

from __future__ import annotations

import json
from typing import Any

from gateway.pipeline.journal import CRM_DONE


def render_explain(d: dict[str, Any]) -> str:
    lines = [
        f"message {d['id']}  {d['message_id']}",
        f"  from: {d['from']}",
        f"  subject: {d['subject']}",
        f"  state: {d['state']}" + (f" — {d['reason']}" if d["reason"] else ""),
    ]
    if d["state"] == "ignored" and not d["reason"]:
        lines.append("  why: no rule's `when` held for it (implicit keep: nothing written)")
    if d["rules"]:
        lines.append(f"  rules that touched it: {', '.join(d['rules'])}")
    if d["direction"]:
        lines.append(f"  direction: {d['direction']}; counterparts: {', '.join(d['counterparts']) or '-'}")
    for address, refs in (d["found"] or {}).items():
        lines.append(
            f"  found {address}: " + (", ".join(f"{r['kind']}:{r['id']} {r.get('name', '')}" for r in refs) or "nothing")
        )
    for step, result in d["journal"].items():
        lines.append(f"  {_journal_line(step, result)}")
    if d.get("review"):
        lines.append(f"  review: {d['review'].get('reason')}")
        for address, refs in d["review"].get("candidates", []):
            lines.append(f"    {address}: " + ", ".join(f"{r['kind']}:{r['id']} {r.get('name', '')}" for r in refs))
    for loc in d["locations"]:
        tags = ", ".join(loc["tags"]) or "-"
        lines.append(f"  at {loc['source']}:{loc['account']}/{loc['folder']} [{loc['state']}] tags: {tags}")
    if d["trace"]:
        lines.append("  trace:")
        for step in d["trace"]:
            mark = {True: "✓", False: "✗", None: "·"}[step.get("result")]
            lines.append(f"    {mark} {step.get('rule') or '-'}: {step.get('event')}: {step.get('detail')}")
    lines.append("  history:")
    for h in d["history"]:
        lines.append(f"    {h['at'][:19]} {h['event']}: {h['detail']}")
    return "\n".join(lines)


def _journal_line(step: str, result: Any) -> str:
    """One journal step in words. Steps are `create:…`, `review:create:…` (a record),
    `attach`, `review:attach` (the mail) and the `crm_done` mark (a bare true); a shape
    not known here is shown as stored rather than failing the whole explanation."""
    if result is None:
        return f"{step}: started, result unknown (will be looked up on retry)"
    if step == CRM_DONE:
        return f"{step}: every CRM step done; only the mailbox write-back was left"
    if isinstance(result, dict) and "kind" in result and "id" in result:
        return f"{step}: {'created' if result.get('created') else 'adopted existing'} {result['kind']}:{result['id']}"
    if isinstance(result, dict) and "email_id" in result:
        on = ", ".join(f"{t.get('kind')}:{t.get('id')}" for t in result.get("targets") or [] if isinstance(t, dict))
        return f"{step}: email {result.get('email_id')} on {on or '-'}"
    if isinstance(result, dict) and "note_ids" in result:
        on = ", ".join(f"{t.get('kind')}:{t.get('id')}" for t in result.get("targets") or [] if isinstance(t, dict))
        return f"{step}: note {', '.join(map(str, result.get('note_ids') or [])) or '-'} on {on or '-'}"
    return f"{step}: {json.dumps(result, default=str)}"
