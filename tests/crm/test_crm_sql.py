"""The embedded CRM (`gateway.crm.sql`) on a real SQLite file and a real PostgreSQL database.

Every scenario runs on both backends; PostgreSQL tests skip (with the reason) when no server
answers on 127.0.0.1:5432. Assertions read what a user sees: `crm dump --json`'s document
(`dump()`), `find` results, stored bytes.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.crm import migrations
from gateway.crm.base import Connector, PartyData, PartyRef, make_connector
from gateway.crm.sql import SqlConnector, make_engine
from gateway.crm.sql_models import VERSION_TABLE, Base
from gateway.errors import Permanent, Retryable
from tests.crm.contract import HOSTILE, attachment, make_mail, person
from tests.crm.fixtures import all_at_once
from tests.crm.sql_backends import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
def crm(url: str) -> Iterator[SqlConnector]:
    with closing(SqlConnector(url)) as c:
        yield c


def count(crm: SqlConnector, table: str) -> int:
    with crm._engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# -- opening -----------------------------------------------------------------------------


def test_factory_builds_it_from_the_crm_config(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "var" / "crm.db"
    c = make_connector(SimpleNamespace(backend="sql", url=f"sqlite:///{db}"))
    try:
        assert isinstance(c, SqlConnector) and isinstance(c, Connector)
        assert db.exists()  # the parent directories were made
        with sqlite3.connect(db) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        c.close()


def test_migration_from_0001_and_reopen(url: str) -> None:
    engine = make_engine(url)
    migrations.upgrade(engine, "0001")
    with engine.begin() as conn:  # a record written by the old version
        conn.execute(
            sa.text(
                "INSERT INTO contacts (owner, fields, created_by_gateway, created_at, first_name, last_name)"
                " VALUES ('me@example.com', '{}', true, CURRENT_TIMESTAMP, 'Old', 'Timer')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO party_emails (kind, party_id, address, address_key) VALUES ('contact', 1, 'Old@X.example', 'old@x.example')"
            )
        )
        conn.execute(
            sa.text("INSERT INTO blobs (sha256, size, data, created_at) VALUES (:s, 5, :d, CURRENT_TIMESTAMP)"),
            {"s": "a" * 64, "d": b"old\x00b"},
        )
    engine.dispose()

    for _ in range(2):  # upgrade to head on the first open, nothing to do on the second
        crm = SqlConnector(url)
        try:
            [ref] = crm.find("OLD@x.example", ["contact"])
            assert ref.name == "Old Timer" and ref.created_at is not None and ref.created_at.tzinfo is not None
            assert crm.attachment_bytes("a" * 64) == b"old\x00b"  # 0002 rebuilt the table on SQLite, bytes intact
            with crm._engine.connect() as conn:
                assert migrations.current(conn) == migrations.head()
                if conn.dialect.name == "sqlite":  # the bytes are the last column: see _stream_blob
                    assert [r[1] for r in conn.execute(sa.text("PRAGMA table_info(blobs)"))][-1] == "data"
        finally:
            crm.close()


def test_a_big_attachment_is_stored_whole_and_once(crm: SqlConnector) -> None:
    """Over 4 MB, SQLite gets the bytes in pieces (incremental blob I/O): every byte arrives,
    under its hash, once, also when a second mail carries the same file."""
    import hashlib
    import os

    ann = crm.create("contact", person("contact", "ann@acme.example"))
    payload = os.urandom(6 * 1024 * 1024 + 123)
    big = attachment("big.bin", payload)
    crm.attach([ann], make_mail("<big1@x>", attachments=[big]))
    crm.attach([ann], make_mail("<big2@x>", body="again", attachments=[big]))
    sha = hashlib.sha256(payload).hexdigest()
    assert crm.attachment_bytes(sha) == payload
    assert [[a["sha256"] for a in e["attachments"]] for e in crm.dump()["emails"]] == [[sha], [sha]]
    assert count(crm, "blobs") == 3  # the file once, and each mail's raw .eml


def test_models_match_the_migrations(crm: SqlConnector) -> None:
    with crm._engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        diff = [d for d in compare_metadata(ctx, Base.metadata) if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]
    assert diff == []


def test_blobs_are_compressed_with_lz4_on_postgresql(crm: SqlConnector) -> None:
    """Migration 0005: pglz took twice as long as LZ4 to store the benchmark's mails."""
    if crm._engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not compress values")
    with crm._engine.connect() as conn:
        method = conn.execute(
            sa.text("SELECT attcompression FROM pg_attribute WHERE attrelid = 'blobs'::regclass AND attname = 'data'")
        ).scalar_one()
    assert method == "l"  # 'l': lz4, 'p': pglz, '': the server's default


# -- parties -----------------------------------------------------------------------------


def test_dump_has_the_spec_shape(crm: SqlConnector) -> None:
    acme = crm.create("account", PartyData(kind="account", name="Acme", domain="Acme.example", owner="me@example.com"))
    ann = crm.create(
        "contact",
        PartyData(
            kind="contact", emails=("ann@acme.example",), first_name="Ann", last_name="Lee", owner="me@example.com", account=acme
        ),
    )
    bob = crm.create(
        "lead",
        PartyData(
            kind="lead",
            emails=("bob@x.org",),
            first_name="Bob",
            last_name="Ray",
            company="x.org",
            owner="me@example.com",
            fields={"source": "VLeads", "status": "open"},
        ),
    )
    pdf = attachment("a.pdf", b"%PDF-1.4 a", "application/pdf")
    crm.attach([ann], make_mail("<d1@acme.example>", subject="Hi", to=["me@example.com"], attachments=[pdf]))
    d = json.loads(json.dumps(crm.dump()))  # what `crm dump --json` prints
    assert set(d) >= {"accounts", "contacts", "leads", "emails"}
    [a] = d["accounts"]
    assert {k: a[k] for k in ("id", "name", "domain", "owner")} == {
        "id": int(acme.id),
        "name": "Acme",
        "domain": "acme.example",
        "owner": "me@example.com",
    }
    [c] = d["contacts"]
    assert {k: c[k] for k in ("id", "first_name", "last_name", "emails", "account_id", "owner")} == {
        "id": int(ann.id),
        "first_name": "Ann",
        "last_name": "Lee",
        "emails": ["ann@acme.example"],
        "account_id": int(acme.id),
        "owner": "me@example.com",
    }
    [lead] = d["leads"]
    assert {k: lead[k] for k in ("id", "first_name", "last_name", "emails", "company", "owner", "status")} == {
        "id": int(bob.id),
        "first_name": "Bob",
        "last_name": "Ray",
        "emails": ["bob@x.org"],
        "company": "x.org",
        "owner": "me@example.com",
        "status": "open",
    }
    assert lead["fields"] == {"source": "VLeads"}
    [e] = d["emails"]
    assert {
        k: e[k] for k in ("id", "message_id", "subject", "from", "to", "cc", "date", "direction", "links", "attachments")
    } == {
        "id": e["id"],
        "message_id": "<d1@acme.example>",
        "subject": "Hi",
        "from": "ann@acme.example",
        "to": ["me@example.com"],
        "cc": [],
        "date": "2026-11-21T10:00:00+00:00",
        "direction": "inbound",
        "links": [{"kind": "contact", "id": int(ann.id)}],
        "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "size": pdf.size, "sha256": pdf.sha256}],
    }
    assert isinstance(e["id"], int) and e["text"] and e["html"].startswith("<p>") and e["date_offset_minutes"] == 60
    assert crm.get_party(bob)["emails"] == ["bob@x.org"]  # type: ignore[index]
    assert crm.get_party(PartyRef("lead", "999")) is None


def test_several_addresses_case_insensitive(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "Ann.Lee@ACME.example", "ann@home.example", "ANN.LEE@acme.EXAMPLE"))
    assert crm.get_party(ann)["emails"] == ["Ann.Lee@acme.example", "ann@home.example"]  # type: ignore[index]
    for a in ("ann.lee@acme.example", "ANN@HOME.EXAMPLE", " <Ann.Lee@acme.example> "):
        assert [r.id for r in crm.find(a, ["lead", "contact"])] == [ann.id]
    crm.add_email_address(ann, "a.lee@xn--bcher-kva.example")
    assert [r.id for r in crm.find("A.Lee@bücher.example", ["contact"])] == [ann.id]
    assert crm.find("", ["contact"]) == []


def test_hostile_addresses_are_stored_as_written(crm: SqlConnector) -> None:
    refs = [crm.create("lead", person("lead", a)) for a in HOSTILE]
    assert [lead["emails"] for lead in crm.dump()["leads"]] == [[a] for a in HOSTILE]
    for a, ref in zip(HOSTILE, refs, strict=True):
        assert [r.id for r in crm.find(a.upper(), ["lead"])] == [ref.id]


def test_address_keys_of_an_older_crm_are_made_canonical(tmp_path) -> None:
    """Migration 0003: a CRM written before keys were canonical finds a quoted address by its plain form."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    crm = SqlConnector(url)
    ann = crm.create("contact", person("contact", '"o\'neil\\\\q"@example.org', "ann@example.org"))
    crm.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the later migrations undone by their own scripts (0006: triggers, columns)
        from alembic import command

        command.downgrade(migrations.SCHEMA.config(conn), "0005")
    with engine.begin() as conn:  # as the previous release left it: the key kept the quotes
        conn.execute(sa.text("UPDATE party_emails SET address_key = lower(address)"))
        conn.execute(sa.text("DROP TABLE notes"))  # a later migration's (0004)
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0002'"))
    engine.dispose()
    crm = SqlConnector(url)
    try:
        assert [r.id for r in crm.find("o'neil\\q@example.org", ["contact"])] == [ann.id]
        assert [r.id for r in crm.find('"O\'Neil\\\\q"@example.org', ["contact"])] == [ann.id]
        assert [r.id for r in crm.find("ann@example.org", ["contact"])] == [ann.id]
        assert crm.dump()["contacts"][0]["emails"] == ['"o\'neil\\\\q"@example.org', "ann@example.org"]
    finally:
        crm.close()


def test_account_named_from_domain_and_found_by_it(crm: SqlConnector) -> None:
    acme = crm.create("account", PartyData(kind="account", domain="XN--BCHER-KVA.example"))
    assert acme.name == "bücher.example"
    assert [r.id for r in crm.find_by_domain("Bücher.Example")] == [acme.id]


def test_unknown_kind_and_missing_parent_are_permanent(crm: SqlConnector) -> None:
    with pytest.raises(Permanent):
        crm.find("a@b.example", ["person"])  # type: ignore[list-item]
    with pytest.raises(Permanent, match="no such record"):
        crm.attach([PartyRef("lead", "999")], make_mail())
    with pytest.raises(Permanent):
        crm.create("contact", PartyData(kind="contact", account=PartyRef("account", "42")))
    assert crm.dump()["emails"] == [] and crm.dump()["contacts"] == []  # nothing half-written


# -- attach ------------------------------------------------------------------------------


def test_attach_twice_is_one_email_and_two_records_two_links(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    acme = crm.create("account", PartyData(kind="account", name="Acme", domain="acme.example"))
    mail = make_mail(attachments=[attachment("q.pdf", b"quote")])
    crm.attach([ann], mail)
    crm.attach([ann], mail)
    crm.attach([ann, acme], mail)
    [e] = crm.dump()["emails"]
    assert e["links"] == [{"kind": "contact", "id": int(ann.id)}, {"kind": "account", "id": int(acme.id)}]
    assert len(e["attachments"]) == 1
    assert crm.raw_email(crm.find_email(mail.message_id)) == mail.raw  # type: ignore[arg-type]


def test_find_returns_every_record_of_an_address_by_kind_then_id(crm: SqlConnector) -> None:
    for i in range(5):  # others of the same kinds: not to be found
        crm.create("contact", person("contact", f"other{i}@acme.example"))
        crm.create("lead", person("lead", f"other{i}@acme.example"))
    c1 = crm.create("contact", person("contact", "Shared@Acme.example"))
    lead = crm.create("lead", person("lead", "shared@acme.example"))
    c2 = crm.create("contact", person("contact", "other@x.example", "SHARED@acme.example"))
    acme = crm.create("account", PartyData(kind="account", name="Acme Corp", emails=("shared@acme.example",)))
    found = crm.find("shared@acme.example", ["contact", "lead", "contact", "account"])
    assert [(r.kind, r.id, r.name) for r in found] == [
        ("contact", c1.id, "Ann Lee"),
        ("contact", c2.id, "Ann Lee"),
        ("lead", lead.id, "Ann Lee"),
        ("account", acme.id, "Acme Corp"),
    ]
    assert all(r.created_at is not None and r.created_at.tzinfo is not None for r in found)
    assert [r.id for r in crm.find("shared@acme.example", ["account"])] == [acme.id]
    assert crm.find("shared@acme.example", []) == []
    with crm._engine.begin() as conn:  # a record gone behind the connector's back: no dangling ref
        conn.execute(sa.text(f"DELETE FROM leads WHERE id = {int(lead.id)}"))
    assert [(r.kind, r.id) for r in crm.find("shared@acme.example", ["lead", "contact"])] == [
        ("contact", c1.id),
        ("contact", c2.id),
    ]


def test_thread_parents_in_the_order_of_their_first_link(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    bob = crm.create("lead", person("lead", "bob@x.example", first="Bob", last=""))
    acme = crm.create("account", PartyData(kind="account", name="Acme", domain="acme.example"))
    crm.attach([ann, bob], make_mail("<t1@x>"))
    crm.attach([acme, ann], make_mail("<t2@x>"))
    crm.attach([bob], make_mail("<t1@x>", body="an edited version"))
    refs = crm.thread_parents(["<t2@x>", "<unknown@x>", "<t1@x>", "<t2@x>", ""])
    assert [(r.kind, r.id, r.name) for r in refs] == [
        ("contact", ann.id, "Ann Lee"),
        ("lead", bob.id, "Bob"),
        ("account", acme.id, "Acme"),
    ]
    assert all(r.created_at is not None for r in refs)
    assert [r.id for r in crm.thread_parents(["<t2@x>"])] == [acme.id, ann.id]
    assert crm.thread_parents(["<unknown@x>"]) == []
    many = [f"<n{i}@x>" for i in range(1200)] + ["<t2@x>"]  # past one IN (…) list
    assert [r.id for r in crm.thread_parents(many)] == [acme.id, ann.id]
    with crm._engine.begin() as conn:  # a record gone behind the connector's back is left out
        conn.execute(sa.text(f"DELETE FROM accounts WHERE id = {int(acme.id)}"))
    assert [r.id for r in crm.thread_parents(["<t2@x>"])] == [ann.id]


def test_attach_completes_what_an_earlier_attach_lacks(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    pdf = attachment("a.pdf", b"%PDF a")
    mail = make_mail(attachments=[pdf])
    bare = dataclasses.replace(mail, raw=b"")
    ref = crm.attach([ann], bare)  # stored before its raw bytes were known
    assert crm.raw_email(ref) is None and crm.dump()["emails"][0]["raw_size"] == 0
    with crm._engine.begin() as conn:  # and its file's bytes lost
        conn.execute(sa.text("DELETE FROM blobs"))
    assert crm.attach([ann], mail) == ref
    assert crm.raw_email(ref) == mail.raw and crm.attachment_bytes(pdf.sha256) == pdf.payload
    [e] = crm.dump()["emails"]
    assert (e["raw_size"], len(e["links"]), len(e["attachments"])) == (len(mail.raw), 1, 1)


def test_attach_with_one_missing_parent_writes_nothing(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    mail = make_mail(attachments=[attachment("a.pdf", b"%PDF a")])
    with pytest.raises(Permanent, match="no such record in the CRM: lead:77"):
        crm.attach([ann, PartyRef("lead", "77"), PartyRef("lead", "x")], mail)
    with pytest.raises(Permanent, match="not an id"):
        crm.attach([ann, PartyRef("lead", "x"), PartyRef("lead", "77")], mail)
    assert crm.dump()["emails"] == [] and count(crm, "blobs") == 0
    assert crm.attach([ann, ann], mail).id == crm.attach([ann], mail).id
    assert len(crm.dump()["emails"][0]["links"]) == 1


def test_same_message_id_other_content_is_a_version_of_the_first(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    refs = [crm.attach([ann], make_mail(body=f"wording {i}")) for i in range(3)]
    emails = crm.dump()["emails"]
    assert [e["id"] for e in emails] == [int(r.id) for r in refs]
    assert [e["version_of"] for e in emails] == [None, int(refs[0].id), int(refs[0].id)]
    assert crm.find_email(refs[0].message_id).id == refs[0].id  # type: ignore[union-attr]


def test_attachment_bytes_stored_once_across_emails(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    payload = bytes(range(256)) * 4096  # 1 MiB
    logo = attachment("logo.bin", payload)
    crm.attach([ann], make_mail("<a@x>", body="one", attachments=[logo]))
    crm.attach([ann], make_mail("<b@x>", body="two", attachments=[logo, attachment("copy.bin", payload)]))
    emails = crm.dump()["emails"]
    assert [[a["sha256"] for a in e["attachments"]] for e in emails] == [[logo.sha256], [logo.sha256, logo.sha256]]
    assert crm.attachment_bytes(logo.sha256) == payload
    assert count(crm, "blobs") == 3  # one attachment + two raw .eml files
    assert crm.attachment_bytes("0" * 64) is None


def test_wrong_upstream_hash_does_not_alias_a_blob(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    good = attachment("a.txt", b"alpha")
    liar = attachment("b.txt", b"beta").__class__("b.txt", "text/plain", 4, good.sha256 + "0", b"beta")
    crm.attach([ann], make_mail(attachments=[good, liar]))
    [e] = crm.dump()["emails"]
    assert [crm.attachment_bytes(a["sha256"]) for a in e["attachments"]] == [b"alpha", b"beta"]


def test_a_record_from_the_parser_carries_hashes_the_crm_stores_under(crm: SqlConnector) -> None:
    """The gateway's parser hashed the raw bytes and each payload: the record says so, and the
    blobs are stored under those hashes, which are the bytes' own."""
    import hashlib

    from gateway.message.parsing import parse
    from gateway.pipeline.journal import email_record
    from tests.mail import make_mail as client_mail

    raw = client_mail(attachments=[("a.pdf", "application/pdf", b"%PDF" + bytes(range(256)) * 50)])
    record = email_record(parse(raw), raw, "inbound")
    assert record.hashes_verified and record.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert not email_record(parse(raw), raw + b"\n", "inbound").hashes_verified  # not the parsed bytes
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    crm.attach([ann], record)
    [e] = crm.dump()["emails"]
    [a] = e["attachments"]
    stored = crm.attachment_bytes(a["sha256"])
    assert stored is not None and hashlib.sha256(stored).hexdigest() == a["sha256"]
    assert crm.attachment_bytes(record.raw_sha256) == raw


def test_nul_characters_do_not_fail_the_mail(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    crm.attach([ann], make_mail(body="bad\x00byte", subject="s\x00"))
    [e] = crm.dump()["emails"]
    assert (e["text"], e["subject"]) == ("badbyte", "s")


def test_concurrent_attach_of_one_mail_makes_one_row(crm: SqlConnector) -> None:
    parties = [crm.create("lead", person("lead", f"p{i}@x.example")) for i in range(4)]
    mail = make_mail(attachments=[attachment("same.pdf", b"x" * 100_000)])
    refs: list[str] = []
    assert all_at_once(lambda p: refs.append(crm.attach([p, parties[0]], mail).id), parties) == []
    [e] = crm.dump()["emails"]
    assert set(refs) == {str(e["id"])}
    assert sorted(link["id"] for link in e["links"]) == sorted(int(p.id) for p in parties)
    assert len(e["attachments"]) == 1


def test_big_attachment_round_trips(crm: SqlConnector) -> None:
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    big = attachment("big.bin", b"\x01" * (20 * 1024 * 1024))
    crm.attach([ann], make_mail(attachments=[big]))
    crm.attach([ann], make_mail(attachments=[big]))  # again: no second copy sent or stored
    assert crm.attachment_bytes(big.sha256) == big.payload
    assert count(crm, "blobs") == 2


# -- forget ------------------------------------------------------------------------------


def test_forget(crm: SqlConnector) -> None:
    gone = crm.create("lead", person("lead", "eve@x.example", first="Eve"))
    human = crm.import_party("contact", person("contact", "Eve@X.example", "eve@home.example", first="Eve"))
    boss = crm.create("contact", person("contact", "boss@x.example", first="Boss"))
    only_eve = make_mail("<1@x>", sender="eve@x.example", attachments=[attachment("cv.pdf", b"eve's cv")])
    shared = make_mail("<2@x>", sender="boss@x.example", cc=["EVE@x.example"], attachments=[attachment("plan.pdf", b"plan")])
    unrelated = make_mail("<3@x>", sender="boss@x.example", to=["someone@else.example"])
    crm.attach([gone, human], only_eve)
    crm.attach([gone, boss, human], shared)
    crm.attach([human], unrelated)
    assert crm.made_by_gateway(gone) and not crm.made_by_gateway(human)

    report = crm.forget("EVE@x.example", crm.made_by_gateway)

    assert [(p.kind, p.id) for p in report.parties] == [("lead", gone.id)]
    assert (report.emails_removed, report.emails_unlinked) == (1, 1)
    d = crm.dump()
    assert d["leads"] == []
    assert [c["id"] for c in d["contacts"]] == [int(human.id), int(boss.id)]  # the human's record stays
    assert {e["message_id"]: [(link["kind"], link["id"]) for link in e["links"]] for e in d["emails"]} == {
        "<2@x>": [("contact", int(boss.id))],
        "<3@x>": [("contact", int(human.id))],  # not Eve's mail: keeps its link
    }
    assert crm.attachment_bytes(only_eve.attachments[0].sha256) is None  # erased with the mail
    assert crm.attachment_bytes(shared.attachments[0].sha256) == b"plan"
    assert crm.find("eve@x.example", ["lead"]) == []
    assert crm.forget("nobody@x.example", lambda r: True).parties == ()


# -- errors ------------------------------------------------------------------------------


def test_locked_sqlite_is_retryable(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    crm = SqlConnector(f"sqlite:///{db}", busy_timeout=0.2)
    ann = crm.create("contact", person("contact", "ann@acme.example"))
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(Retryable, match="locked"):
            crm.attach([ann], make_mail())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    crm.attach([ann], make_mail())  # and it passes once the lock is gone
    assert len(crm.dump()["emails"]) == 1
    crm.close()


def test_unreachable_postgres_is_retryable() -> None:
    with pytest.raises(Retryable):
        SqlConnector("postgresql+psycopg://postgres@127.0.0.1:9/nothing", busy_timeout=1)


def test_data_postgres_refuses_is_permanent(url: str, crm: SqlConnector) -> None:
    if not url.startswith("postgresql"):
        pytest.skip("SQLite does not enforce column lengths")
    with pytest.raises(Permanent, match="too long"):
        crm.create("lead", PartyData(kind="lead", owner="x" * 400))


def test_long_values_from_hostile_mail_are_kept_or_cut_not_refused(crm: SqlConnector) -> None:
    lead = crm.create("lead", PartyData(kind="lead", emails=("x" * 400 + "@x.example",), first_name="N" * 1000))
    crm.attach(
        [lead], make_mail(sender="y" * 500 + "@x.example", attachments=[attachment("a", b"a", "text/plain; " + "p=1; " * 100)])
    )
    d = crm.dump()
    assert d["leads"][0]["first_name"] == "N" * 255
    assert [r.id for r in crm.find("X" * 400 + "@x.example", ["lead"])] == [lead.id]
    assert d["emails"][0]["from"] == "y" * 500 + "@x.example"
