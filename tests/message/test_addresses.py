"""The address normaliser: canonical forms, quoted local parts, and what is not an address.

Property tests (Hypothesis) feed it arbitrary text and RFC-shaped addresses; the examples
below them pin the cases seen in the field."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.message import addresses

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
# what a quoted local part may hold: anything printable, blanks, quotes and backslashes included
QTEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), min_size=1, max_size=20)
LABEL = st.text(st.sampled_from(string.ascii_lowercase + string.digits + "äöüßé"), min_size=1, max_size=12)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)

# properties run many times; keep them off the clock (the machine may be busy)
PROPERTY = settings(max_examples=400, deadline=None, database=None)  # every run alike: no stored examples


def quote(local: str) -> str:
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


@PROPERTY
@given(st.text())
@example('"abc\\"@x')
@example("@")
@example("<>")
@example('""@x')
@example("a@xn--")
@example("a@xn--zz-")
def test_any_text_is_an_address_or_clearly_not(text: str) -> None:
    result = addresses.canonical(text)
    assert result is None or (isinstance(result, str) and "@" in result)
    assert isinstance(addresses.key(text), str)
    assert isinstance(addresses.spellings(text), tuple)


@PROPERTY
@given(st.text())
@example('" a"@x')
@example('"<a"@x')
@example('"\\"x\\""@x')
def test_canonical_form_is_idempotent(text: str) -> None:
    once = addresses.canonical(text)
    if once is not None:
        assert addresses.canonical(once) == once
        assert addresses.key(once) == addresses.key(text)


@PROPERTY
@given(QTEXT, DOMAIN)
@example("o'neil\\q", "example.org")
@example("100%", "example.org")
@example("under_score", "example.org")
@example('say "hi"', "example.org")
@example("\x85", "0")  # a blank by str.strip() that the quoting keeps: still nobody's mailbox
def test_quoted_and_plain_forms_of_one_address_agree(local: str, domain: str) -> None:
    quoted = f"{quote(local)}@{domain}"
    plain = f"{local}@{domain}"
    canon = addresses.canonical(quoted)
    if not local.strip():
        assert canon is None  # `" "@x` is nobody's mailbox
        return
    assert canon is not None
    if canon.rpartition("@")[0] == local:  # the common case: the plain form reads back the same
        assert addresses.key(plain) == addresses.key(quoted)
        assert {addresses.key(s) for s in addresses.spellings(plain)} == {addresses.key(quoted)}
        assert canon in addresses.spellings(quoted) and canon in addresses.spellings(plain)


@PROPERTY
@given(st.text(st.sampled_from(ATEXT), min_size=1, max_size=15), DOMAIN)
def test_quoting_a_plain_local_part_changes_nothing(local: str, domain: str) -> None:
    assert addresses.canonical(f'"{local}"@{domain}') == addresses.canonical(f"{local}@{domain}")


@PROPERTY
@given(QTEXT, QTEXT, DOMAIN)
def test_different_local_parts_stay_different(a: str, b: str, domain: str) -> None:
    if a.casefold() != b.casefold() and a.strip() and b.strip():
        assert addresses.key(f"{quote(a)}@{domain}") != addresses.key(f"{quote(b)}@{domain}")


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ('"o\'neil\\\\q"@example.org', "o'neil\\q@example.org"),  # what the header parser gives for a backslash
        ('"o\'neil\\q"@example.org', "o'neilq@example.org"),  # `\q` is a quoted-pair: the q alone
        ('"quoted name"@Example.ORG', "quoted name@example.org"),
        ('<"ann"@XN--BCHER-KVA.example>', "ann@bücher.example"),
        ('"a\\"b"@x.example', 'a"b@x.example'),
        ('"\\"x\\""@x.example', '"\\"x\\""@x.example'),  # unquoted it would read as a quoted string
        ('"a"."b"@x.example', '"a"."b"@x.example'),  # not one quoted string: as written
    ],
)
def test_canonical_examples(given_: str, expected: str) -> None:
    assert addresses.canonical(given_) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "no-at-sign",
        "@example.org",
        "ann@",
        "ann@ ",
        '""@example.org',
        "ann@exa mple.org",
        "ann@exa\x00mple.org",
        "%",
        "_%",
    ],
)
def test_not_an_address(text: str) -> None:
    assert addresses.canonical(text) is None


def test_hostile_characters_are_never_wildcards() -> None:
    assert addresses.key("100%@example.org") != addresses.key("100X@example.org")
    assert addresses.key("under_score@example.org") != addresses.key("underXscore@example.org")
    assert addresses.key('"o\'neil\\\\q"@example.org') == addresses.key("O'Neil\\Q@EXAMPLE.ORG")
    assert addresses.key('"o\'neil\\\\q"@example.org') != addresses.key("o'neilq@example.org")
