"""The `note` action: a note on the found or created records, its text a template over the
mail's fields (`note: {text: "Mail from {from.name}: {subject}", to: found}`).

A note is a CRM effect like an attach: the Plan carries it with a journal key
("note:<rule>:<n>"), the pipeline journals it and calls the connector's `add_note`, which is
idempotent per key and record, so a retry or a crash replay never writes a second note.
With no record to put it on, nothing is written and the trace says so; the mail goes on (in
review, the note goes on the records the person picks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from yaml.nodes import Node

from gateway.engine.action_base import Action, Args, action
from gateway.engine.actions_records import AttachTo, records_for
from gateway.engine.model import PlannedNote
from gateway.engine.templates import check_template, render
from gateway.reading.yamlpos import Checker

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation

NOTE_TEXT_MAX = 10_000  # characters after rendering: a note, not a copy of the mail


class NoteOptions(Args):
    text: str = Field(min_length=1)
    title: str = ""
    to: AttachTo | list[AttachTo] = "all"


@action("note")
class Note(Action):
    Options = NoteOptions
    shorthand = "text"
    needs_records = True

    @classmethod
    def check_options(cls, options: Any, node: Node | None, chk: Checker) -> None:
        check_template(options.text, "note.text", node, ["text"], chk)
        check_template(options.title, "note.title", node, ["title"], chk)

    def apply(self, ev: Evaluation) -> str:
        o: NoteOptions = self.options
        targets = tuple(dict.fromkeys(records_for(ev, o.to)))
        text = render(o.text, ev)[:NOTE_TEXT_MAX]
        title = render(o.title, ev)[:255]
        key = f"note:{ev.rule}:{sum(1 for n in ev.notes if n.rule == ev.rule)}"
        ev.notes.append(PlannedNote(key=key, targets=targets, text=text, title=title, rule=ev.rule))
        shown = text if len(text) <= 60 else text[:57] + "..."
        if not targets:  # a person who resolves a review of this mail puts it on the records picked
            return f"note {shown!r}: no record to put it on (if the mail goes to review, on the records picked)"
        return f"note on {', '.join(t.label() for t in targets)}: {shown!r}"
