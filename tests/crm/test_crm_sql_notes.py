"""Notes in the embedded CRM (`add_note`, the `notes` table) beyond the connector contract:
concurrent writers, a missing record, the key's bounds. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.crm.base import NoteData, PartyRef
from gateway.crm.sql import SqlConnector
from gateway.errors import Permanent
from tests.crm.contract import person
from tests.crm.fixtures import all_at_once, sql_connector
from tests.crm.sql_backends import BACKENDS

NOTE = NoteData(key="hash-1/rule-2/step-0", text="Call back.", title="Quote", owner="me@example.com", message_id="<m1@x>")


@pytest.fixture(params=BACKENDS)
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlConnector]:
    with sql_connector(request.param, tmp_path) as c:
        yield c


def test_a_note_keeps_its_title_owner_and_mail(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    ref = crm.add_note([ann], NOTE)
    [n] = crm.notes(ann)
    assert ref.ids == (str(n["id"]),)
    assert {k: n[k] for k in ("key", "title", "text", "owner", "message_id")} == {
        "key": NOTE.key,
        "title": "Quote",
        "text": "Call back.",
        "owner": "me@example.com",
        "message_id": "<m1@x>",
    }


def test_concurrent_notes_with_one_key_make_one_per_record(crm: SqlConnector) -> None:
    parties = [crm.create("lead", person("lead", f"p{i}@x.example")) for i in range(4)]
    refs: list[tuple[str, ...]] = []
    assert all_at_once(lambda p: refs.append(crm.add_note([p, parties[0]], NOTE).ids), parties) == []
    assert [len(crm.notes(p)) for p in parties] == [1, 1, 1, 1]
    assert {r[-1] for r in refs} == {str(crm.notes(parties[0])[0]["id"])}


def test_a_missing_record_is_permanent_and_writes_nothing(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    with pytest.raises(Permanent, match="no such record"):
        crm.add_note([ann, PartyRef("lead", "999999")], NOTE)
    assert crm.notes(ann) == []


def test_a_key_out_of_bounds_is_permanent(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    for key in ("", "k" * 256):
        with pytest.raises(Permanent, match="note key"):
            crm.add_note([ann], NoteData(key=key, text="x"))
    crm.add_note([ann], NoteData(key="k" * 255, text="x"))
    assert [n["key"] for n in crm.notes(ann)] == ["k" * 255]


def test_nul_characters_do_not_fail_the_note(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    crm.add_note([ann], NoteData(key="k", text="a\x00b", title="t\x00"))
    assert [(n["title"], n["text"]) for n in crm.notes(ann)] == [("t", "ab")]
