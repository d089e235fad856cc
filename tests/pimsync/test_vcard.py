"""The vCard mapping (gateway/pimsync/vcard.py): what is rendered reads back the same, for
any text a person may type (property test), and what a card holds beyond the mapped fields
survives an update."""

from __future__ import annotations

from dataclasses import replace

import pytest
import vobject
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crm.sync import CONTACT_FIELDS, ContactFields
from gateway.errors import Permanent
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


# Cards as other clients write them (the shapes of their exports: Apple Contacts with grouped
# labels and repeated `type=`, Google Contacts, Nextcloud through sabre/vobject)
APPLE = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.4//EN\r\n"
    "N:Appleseed;John;Paul;;\r\nFN:John Paul Appleseed\r\nORG:Apple Inc.;Engineering;\r\nTITLE:Engineer\r\n"
    "item1.EMAIL;type=INTERNET;type=pref:john@apple.example\r\nitem1.X-ABLabel:_$!<Other>!$_\r\n"
    "EMAIL;type=INTERNET;type=HOME:jp@home.example\r\n"
    "TEL;type=CELL;type=VOICE;type=pref:+1 408 555 0101\r\nTEL;type=WORK;type=FAX:+1 408 555 0103\r\n"
    "TEL;type=WORK;type=VOICE:+1 408 555 0102\r\n"
    "item2.ADR;type=WORK;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;United States\r\nitem2.X-ABADR:us\r\n"
    "BDAY:1976-04-01\r\nREV:2024-01-01T10:00:00Z\r\nUID:apple-1\r\nEND:VCARD\r\n"
)
GOOGLE = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Maria José García\r\nN:García;Maria,José;;;\r\n"
    "EMAIL;TYPE=INTERNET;TYPE=HOME:maria@home.example\r\nEMAIL;TYPE=INTERNET;TYPE=WORK:maria@work.example\r\n"
    "TEL;TYPE=WORK,FAX:+34 910 000 001\r\nTEL;TYPE=PAGER:+34 910 000 002\r\nTEL;TYPE=WORK:+34 910 000 000\r\n"
    "ADR;TYPE=WORK:;;Calle Mayor 1,2º izquierda;Madrid;;28013;Spain\r\nORG:Acme S.L.\r\nTITLE:Directora\r\n"
    "item1.URL:http\\://acme.example\r\nitem1.X-ABLabel:\r\nCATEGORIES:myContacts\r\nEND:VCARD\r\n"
)
NEXTCLOUD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Sabre//Sabre VObject 4.5.4//EN\r\nUID:6f1c-nc\r\n"
    "FN:Hans Müller\r\nN:Müller;Hans;;;\r\nORG:Müller GmbH;Vertrieb\r\n"
    'TEL;TYPE="WORK,VOICE":+49 30 1234\r\nTEL;TYPE=CELL:+49 170 1234\r\n'
    "EMAIL;TYPE=WORK:hans@mueller.example\r\nADR;TYPE=WORK:;;Hauptstr. 5;Berlin;;10115;Germany\r\n"
    "REV;VALUE=DATE-AND-OR-TIME:20240301T120000Z\r\nEND:VCARD\r\n"
)


def test_cards_as_other_clients_write_them_read_as_their_user_sees_them() -> None:
    apple = parse(APPLE).fields
    assert (apple.first_name, apple.last_name, apple.organization, apple.title) == ("John", "Appleseed", "Apple Inc.", "Engineer")
    assert apple.emails == ("john@apple.example", "jp@home.example")
    assert (apple.phone_work, apple.phone_mobile) == ("+1 408 555 0102", "+1 408 555 0101")  # not the fax
    assert (apple.street, apple.city, apple.postal_code) == ("1 Infinite Loop", "Cupertino", "95014")

    google = parse(GOOGLE).fields
    assert (google.first_name, google.last_name) == ("Maria José", "García")  # both given names, as text
    assert google.phone_work == "+34 910 000 000"  # neither the fax nor the pager
    assert google.street == "Calle Mayor 1, 2º izquierda"

    nextcloud = parse(NEXTCLOUD).fields
    assert (nextcloud.organization, nextcloud.phone_work, nextcloud.phone_mobile) == (
        "Müller GmbH",
        "+49 30 1234",
        "+49 170 1234",
    )


def test_a_fax_only_card_has_no_work_phone_and_an_update_leaves_the_fax_alone() -> None:
    base = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:f\r\nN:Fax;Only;;;\r\nFN:Only Fax\r\nTEL;TYPE=WORK,FAX:+1 555 0100\r\nEND:VCARD\r\n"
    assert parse(base).fields.phone_work == ""
    out = render(ContactFields(first_name="Only", last_name="Fax", phone_work="+1 555 0199"), "f", "contact:1", base=base)
    tels = {t.value: t.params.get("TYPE") for t in vobject.readOne(out).contents["tel"]}
    assert tels == {"+1 555 0100": ["WORK", "FAX"], "+1 555 0199": ["WORK"]}


def test_an_update_changes_the_chosen_properties_in_place_keeping_their_parameters() -> None:
    was = parse(APPLE).fields
    now = replace(was, phone_work="+1 408 555 0199", organization="Apple", street="2 Apple Park Way", city="Cupertino")
    card = vobject.readOne(render(now, "apple-1", "contact:1", base=APPLE))
    tels = {t.value: {v.upper() for v in t.params["TYPE"]} for t in card.contents["tel"]}
    assert tels == {
        "+1 408 555 0101": {"CELL", "VOICE", "PREF"},
        "+1 408 555 0103": {"WORK", "FAX"},
        "+1 408 555 0199": {"WORK", "VOICE"},
    }
    assert card.org.value == ["Apple", "Engineering"]  # the unit stays
    emails = {e.value: (e.group, {v.upper() for v in e.params["TYPE"]}) for e in card.contents["email"]}
    assert emails == {"john@apple.example": ("item1", {"INTERNET", "PREF"}), "jp@home.example": (None, {"INTERNET", "HOME"})}
    (adr,) = card.contents["adr"]
    assert (adr.group, adr.value.street, {v.upper() for v in adr.params["TYPE"]}) == (
        "item2",
        "2 Apple Park Way",
        {"WORK", "PREF"},
    )
    assert parse(card.serialize()).fields == now


def test_an_encoded_email_is_decoded_and_what_is_no_vcard_is_refused() -> None:
    b64 = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:1\r\nN:X;Y;;;\r\nEMAIL;ENCODING=b:Zm9vQGJhci5leGFtcGxl\r\nEND:VCARD\r\n"
    assert parse(b64).fields.emails == ("foo@bar.example",)
    calendar = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nEND:VCALENDAR\r\n"
    with pytest.raises(Permanent, match="not a vCard"):
        parse(calendar)
    with pytest.raises(Permanent, match="not a vCard"):
        render(ContactFields(first_name="A"), "u", "contact:1", base=calendar)
