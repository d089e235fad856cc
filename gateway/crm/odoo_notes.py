"""Notes on Odoo records (`add_note`): an internal note (`mail.mt_note`) in each record's
chatter, posted with `message_post`, once per key.

The key travels in the message's own `message_id` (`<tag.note@crm-gateway>`, the tag of
gateway/crm/note_marker.py): a replay searches `mail.message` for it on the targets' model and
ids and posts only where it is missing.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm import note_marker
from gateway.crm.base import NoteData, NoteRef


def add_note(call: Callable[..., Any], targets: Sequence[tuple[str, int]], note: NoteData) -> NoteRef:
    """Post `note` on each (model, id) of `targets` that lacks it, through `call` (the
    connector's `call(model, method, ids, **params)`).

    The title is the message's subject; the text goes as HTML (each line escaped, lines joined
    by `<br>`), flagged `body_is_html` for Odoo 17+, which would escape a plain string (older
    versions ignore the flag and take the body as HTML). The author is the API user: Odoo's
    notes have no assignee.
    """
    targets = list(dict.fromkeys(targets))
    mid = note_message_id(note.key)
    have: dict[tuple[str, int], int] = {}
    for model in dict.fromkeys(m for m, _ in targets):
        ids = [rid for m, rid in targets if m == model]
        rows = call(
            "mail.message",
            "search_read",
            domain=[["model", "=", model], ["res_id", "in", ids], ["message_id", "=", mid]],
            fields=["id", "res_id"],
            order="id",
        )
        for row in rows:
            have.setdefault((model, row["res_id"]), row["id"])
    for model, res_id in targets:
        if (model, res_id) not in have:
            post: dict[str, Any] = dict(
                body=note_html(note.text),
                body_is_html=True,
                message_type="comment",
                subtype_xmlid="mail.mt_note",
                message_id=mid,
            )
            if note.title.strip():
                post["subject"] = " ".join(note.title.split())
            have[(model, res_id)] = call(model, "message_post", [res_id], **post)
    return NoteRef(note.key, tuple(str(have[t]) for t in targets))


def note_message_id(key: str) -> str:
    """The `message_id` of the notes with this key: unique to it, and no mail's."""
    return f"<{note_marker.tag(key)}.note@crm-gateway>"


def note_html(text: str) -> str:
    """A note's text as the HTML body of a message: escaped, its lines joined by `<br>`."""
    return "<br>".join(html.escape(line, quote=False) for line in text.split("\n"))
