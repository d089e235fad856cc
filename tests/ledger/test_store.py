"""The ledger on real SQLite: idempotent intake, identity claims, journal, retries, migrations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.errors import Permanent
from gateway.ledger import Ledger, SourceRef
from gateway.ledger.migrations import SCHEMA


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    yield led
    led.close()


def ref(folder="VLeads", key="k1", uv=0):
    return SourceRef("src", "me@example.com", folder, key, uv)


def test_receive_is_idempotent_per_location(ledger):
    a = ledger.receive(ref(), "/spool/a")
    b = ledger.receive(ref(), "/spool/b")
    assert a.id == b.id and b.spool_path == "/spool/a"
    other = ledger.receive(ref(uv=7), "/spool/c")  # a new UIDVALIDITY is another location
    assert other.id != a.id


def test_second_copy_links_to_the_first_and_only_the_first_is_primary(ledger):
    one = ledger.receive(ref("VLeads", "1"), None)
    two = ledger.receive(ref("VContacts", "2"), None)
    b1 = ledger.bind(one.id, message_id="<m@x>", content_hash="h")
    b2 = ledger.bind(two.id, message_id="<m@x>", content_hash="h")
    assert (b1.primary, b2.primary) == (True, False) and b1.message_pk == b2.message_pk
    assert ledger.message(b1.message_pk).primary_location == one.id
    assert ledger.bind(two.id, message_id="<m@x>", content_hash="h").primary is False  # asked again
    v2 = ledger.bind(ledger.receive(ref("VLeads", "3"), None).id, message_id="<m@x>", content_hash="other")
    assert v2.primary and v2.message_pk != b1.message_pk  # same Message-ID, other content: a version


def test_journal_keeps_intents_without_results(ledger):
    pk = ledger.bind(ledger.receive(ref(), None).id, message_id="<m@x>", content_hash="h").message_pk
    ledger.intent(pk, "create:lead:a@x")
    ledger.intent(pk, "create:lead:a@x")
    assert ledger.journal(pk) == {"create:lead:a@x": None}
    ledger.result(pk, "create:lead:a@x", {"kind": "lead", "id": "7", "created": True})
    assert ledger.journal(pk)["create:lead:a@x"]["id"] == "7"
    assert ledger.created_refs() == {("lead", "7")}


def test_retry_schedule_and_due(ledger):
    pk = ledger.bind(ledger.receive(ref(), None).id, message_id="<m@x>", content_hash="h").message_pk
    assert ledger.schedule_retry(pk, "CRM away", 0) == 1
    assert ledger.due_retries() == [pk]
    assert ledger.schedule_retry(pk, "CRM away", 3600) == 2
    assert ledger.due_retries() == []
    assert ledger.message(pk).state == "retrying" and "CRM away" in ledger.message(pk).reason


def test_an_older_ledger_is_upgraded_and_a_newer_one_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    SCHEMA.upgrade(engine, "0001")
    with engine.begin() as c:
        assert SCHEMA.current(c) == "0001"
    Ledger(url).close()  # opens (and would upgrade) without error
    with engine.begin() as c:
        c.execute(sa.text("UPDATE ledger_schema_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(Permanent, match="newer version"):
        Ledger(url)


def test_the_schemas_know_their_newest_migration():
    from gateway.crm.migrations import SCHEMA as CRM

    for schema in (SCHEMA, CRM):
        assert schema.head_revision == schema.head(), schema.scripts


def test_receive_many_keeps_order_and_known_rows(ledger):
    known = ledger.receive(ref(key="b"), "/spool/old-b")
    rows = ledger.receive_many(
        [(ref(key="a"), "/spool/a", None), (ref(key="b"), "/spool/new-b", None), (ref("CRM sync", key="c"), "/spool/c", 5000)]
    )
    assert [r.ref.item_key for r in rows] == ["a", "b", "c"]
    assert rows[1].id == known.id and rows[1].spool_path == "/spool/old-b"  # a known copy keeps its row
    assert rows[2].declared_size == 5000 and rows[2].ref.folder == "CRM sync"
    assert len({r.id for r in rows}) == 3


def test_spool_store_many_writes_every_message_whole(tmp_path):
    from gateway.ledger.spool import Spool

    spool = Spool(tmp_path / "spool")
    raws = [bytes([i]) * (1000 * i + 1) for i in range(20)]
    paths = spool.store_many(raws)
    assert [p.read_bytes() for p in paths] == raws
    assert len(set(paths)) == 20 and not list((tmp_path / "spool" / "tmp").iterdir())


def test_uidvalidity_above_2_31_on_postgresql():
    from tests.crm.sql_backends import postgres_url

    with postgres_url() as url:
        led = Ledger(url)
        try:
            row = led.receive(ref(uv=3_000_000_000), None)
            assert led.location_at(ref(uv=3_000_000_000)).id == row.id
        finally:
            led.close()
