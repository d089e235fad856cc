"""Templates in rule options (`create.fields`, `note.text`): `{name}` placeholders over the
mail's fields. An unknown placeholder is a `check` error with its position; at run time one
that slipped through stays as written.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from yaml.nodes import Node

from gateway.reading.yamlpos import Checker, did_you_mean, node_at

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation

TEMPLATE_NAMES = (
    "from.name",
    "from.address",
    "from.domain",
    "subject",
    "mailbox",
    "to",
    "date",
    "message_id",
    "folder",
    "attachments",
)
_TEMPLATE = re.compile(r"\{([^{}]*)\}")


def render(template: str, ev: Evaluation) -> str:
    first = (ev.message.from_ or ev.message.sender or (None,))[0]
    values = {
        "from.name": first.name if first else "",
        "from.address": first.address if first else "",
        "from.domain": first.domain if first else "",
        "subject": ev.message.subject,
        "mailbox": ev.ctx.mailbox,
        "to": ", ".join(a.address for a in ev.message.to),
        "date": ev.message.date.strftime("%Y-%m-%d %H:%M UTC"),
        "message_id": ev.message.message_id,
        "folder": ev.ctx.folder,
        "attachments": ", ".join(a.filename for a in ev.message.attachments),
    }
    return _TEMPLATE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def check_template(template: str, what: str, node: Node | None, path: list[str | int], chk: Checker) -> None:
    """Report each unknown placeholder of `template` at the option's position."""
    for placeholder in _TEMPLATE.findall(template):
        if placeholder not in TEMPLATE_NAMES:
            at = node_at(node, path) if node is not None else None
            if at is not None:
                chk.error(at, f"{what}: unknown placeholder '{{{placeholder}}}'{did_you_mean(placeholder, TEMPLATE_NAMES)}")
