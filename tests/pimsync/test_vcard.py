"""The vCard mapping (gateway/pimsync/vcard.py): what is rendered reads back the same, for
any text a person may type (property test), and what a card holds beyond the mapped fields
survives an update."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crm.sync import CONTACT_FIELDS, ContactFields
from gateway.pimsync.vcard import parse, render

# what people type in a field: any printable text, with the vCard's own separators, but no
# line breaks (the CRM's columns are one line) and no surrounding blanks (both sides trim)
text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\r\n"), max_size=40).map(
    str.strip
)
emails = st.lists(st.from_regex(r"[a-z0-9._-]{1,10}@[a-z0-9-]{1,10}\.example", fullmatch=True), max_size=3, unique=True)


@settings(max_examples=200, deadline=None)
@given(
    values=st.fixed_dictionaries({name: text for name in CONTACT_FIELDS if name != "emails"}),
    addresses=emails,
    version=st.sampled_from(["3.0", "4.0"]),
)
def test_a_rendered_card_reads_back_the_same_fields(values: dict[str, str], addresses: list[str], version: str) -> None:
    fields = ContactFields(**values, emails=tuple(addresses))
    assert parse(render(fields, "uid-1", "contact:1", version)).fields == fields


def test_an_update_keeps_what_the_card_has_beyond_the_mapped_fields() -> None:
    base = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:A B\r\nN:B;A;;;\r\nNOTE:met at the fair\r\n"
        "BDAY:1990-01-01\r\nTEL;TYPE=HOME:+1 111\r\nTEL;TYPE=WORK:+1 222\r\nEND:VCARD\r\n"
    )
    out = render(ContactFields(first_name="A", last_name="B", phone_work="+1 333"), "x", "contact:1", base=base)
    assert "NOTE:met at the fair" in out and "BDAY:1990-01-01" in out and "TEL;TYPE=HOME:+1 111" in out
    assert "+1 222" not in out and parse(out).fields.phone_work == "+1 333"
