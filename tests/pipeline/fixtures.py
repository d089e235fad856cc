"""What the pipeline's tests share: the shipped rules with a `note` action added."""

from __future__ import annotations

from typing import Any

NOTE = '      - note: {text: "Mail from {from.name} <{from.address}>: {subject}", title: "Mail of {date}"}\n'


def with_notes(home: Any) -> None:
    """The shipped rules, with a note after each attach of the Leads and CRM sync rules."""
    for name, anchor in (
        ("folders.yaml", "      - attach: {to: all}\n"),
        ("crm-sync.yaml", "      - attach: {to: [found, domain], if_none: review}\n"),
    ):
        path = home.root / "rules" / name
        text = path.read_text()
        assert anchor in text
        path.write_text(text.replace(anchor, anchor + NOTE, 1))
