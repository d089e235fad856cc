"""Notes on Tryton records (`add_note`): an `ir.note` on the party or the opportunity
(`resource` = "party.party,12" / "sale.opportunity,7", `message` = the text).

`ir.note` has no field for the gateway's key, no subject and no assignee: the title leads the
message, the key travels in the trailing marker line of gateway/crm/note_marker.py, and the
owner is not kept (Tryton records who created the note). A replay searches the targets'
notes whose message contains the key's marker (`like`, then parsed exactly) and creates the
note only on the records that lack it, all in one `create`. Erasing a record erases its
notes: trytond deletes the `ir.note` rows of a deleted record itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.crm import note_marker
from gateway.crm.base import NoteData, NoteRef
from gateway.crm.tryton_rpc import TrytonRpc


def add_note(rpc: TrytonRpc, targets: Sequence[str], note: NoteData) -> NoteRef:
    """Put `note` on each resource of `targets` that lacks it; two requests at most."""
    targets = list(dict.fromkeys(targets))
    if not targets:
        return NoteRef(note.key)
    tag = note_marker.tag(note.key)
    rows = rpc.call(
        "model.ir.note.search_read",
        [("resource", "in", targets), ("message", "like", f"%{note_marker.search_text(note.key)}%")],
        0,
        None,
        [("id", "ASC")],
        ["resource", "message"],
    )
    have: dict[str, int] = {}
    for row in rows:
        parsed = note_marker.parse(row["message"])
        if parsed is not None and parsed.tag == tag:
            have.setdefault(row["resource"], row["id"])
    todo = [t for t in targets if t not in have]
    if todo:
        message = note_marker.compose(note)
        have.update(zip(todo, rpc.call("model.ir.note.create", [{"resource": t, "message": message} for t in todo]), strict=True))
    return NoteRef(note.key, tuple(str(have[t]) for t in targets))
