"""The marker that carries a note's key where the CRM has no field for it (Tryton, vtiger)."""

from __future__ import annotations

from gateway.crm import note_marker
from gateway.crm.base import NoteData


def test_compose_and_parse_round_trip_with_and_without_a_title() -> None:
    for title in ("", "Call back", "  spread \n over lines "):
        for text in ("", "one line", "two\n\nparagraphs\n\n", "ends with what looks like a marker\n\n[crm-gateway note x]"):
            stored = note_marker.compose(NoteData(key="k1", text=text, title=title))
            parsed = note_marker.parse(stored)
            assert parsed == note_marker.Parsed(note_marker.tag("k1"), " ".join(title.split()), text), (title, text)
            assert note_marker.search_text("k1") in stored


def test_the_tag_is_short_hex_and_differs_by_key() -> None:
    a, b = note_marker.tag("mail-1/step-1"), note_marker.tag("mail-2/step-1")
    assert a != b and len(a) == 24 and set(a) <= set("0123456789abcdef")
    assert note_marker.tag("mail-1/step-1") == a


def test_text_the_gateway_did_not_write_has_no_marker() -> None:
    for text in (
        None,
        "",
        "a person's note",
        "x\n\n[crm-gateway note zz]",
        "x\n\n[crm-gateway note 0123]",
        "x\n\n[crm-gateway note 0123456789abcdef01234567",
    ):
        assert note_marker.parse(text) is None, text
