"""A worker handles queued copies in batches (`batch` in the config): the outcome must be the
one of the same messages handled one after the other, and a batch the CRM refuses must fall
back to one message at a time, losing and duplicating nothing."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.crm.sql import SqlConnector
from gateway.errors import Permanent, Retryable
from tests.mail import make_mail


def _mixed_mailbox(home) -> None:
    """Mail whose outcomes depend on the order: creates a later mail must find, a reply whose
    thread is stored by an earlier mail of the same run, copies, automated mail."""
    home.drop("VLeads", make_mail(sender="Nina New <nina@new.example>", subject="Hello", message_id="<n1@new.example>"))
    home.drop("VLeads", make_mail(sender="Nina New <nina@new.example>", subject="Again", message_id="<n2@new.example>"))
    home.drop(
        "VLeads",
        make_mail(
            sender="Bot <noreply@shop.example>", subject="Automatic reply: away", headers={"Auto-Submitted": "auto-replied"}
        ),
    )
    home.drop("VContacts", make_mail(sender="Carl Coe <carl@coe.example>", subject="Quote", message_id="<c1@coe.example>"))
    shared = make_mail(sender="Dana Dee <dana@dee.example>", subject="In two folders", message_id="<d1@dee.example>")
    home.drop("VContacts", shared)
    home.drop("VAccounts", shared)
    # CRM sync: one from a contact created above, a reply to it from a stranger, a stranger alone
    home.drop("CRM sync", make_mail(sender="Carl Coe <carl@coe.example>", subject="Project", message_id="<p1@coe.example>"))
    home.drop(
        "CRM sync", make_mail(sender="Partner <boss@partner.example>", subject="Re: Project", in_reply_to="<p1@coe.example>")
    )
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", subject="Unknown"))


def _view(home) -> dict[str, Any]:
    """What a user sees in the CRM, without ids and times."""
    crm = home.dump()
    names = {
        (kind[:-1] if kind != "accounts" else "account", r["id"]): r.get("name") or f"{r['first_name']} {r['last_name']}"
        for kind in ("leads", "contacts", "accounts")
        for r in crm[kind]
    }
    return {
        "leads": sorted((r["first_name"], r["last_name"], tuple(r["emails"])) for r in crm["leads"]),
        "contacts": sorted((r["first_name"], r["last_name"], tuple(r["emails"])) for r in crm["contacts"]),
        "accounts": sorted((r["name"], r["domain"]) for r in crm["accounts"]),
        "emails": sorted(
            (e["subject"], tuple(sorted(names[(l["kind"], l["id"])] for l in e["links"])), len(e["attachments"]))
            for e in crm["emails"]
        ),
    }


def test_a_batch_gives_the_outcome_of_its_messages_one_after_the_other(make_home):
    one_by_one = make_home(extra={"workers": 1, "batch": 1})
    batched = make_home(extra={"workers": 1, "batch": 64})
    for home in (one_by_one, batched):
        _mixed_mailbox(home)
    summaries = [home.run_once() for home in (one_by_one, batched)]
    assert summaries[0] == summaries[1] == {"done": 7, "review": 1, "skipped": 1}  # the copy is one message
    view = _view(batched)
    assert view == _view(one_by_one)
    # and what that outcome is: one lead for two mails, the reply on its thread's contact
    assert view["leads"] == [("Nina", "New", ("nina@new.example",))]
    by_subject = {subject: links for subject, links, _ in view["emails"]}
    assert by_subject["Again"] == ("Nina New",)
    assert by_subject["Re: Project"] == ("Carl Coe",)
    assert "Unknown" not in by_subject and "Automatic reply: away" not in by_subject
    assert len(view["emails"]) == 6  # the mail in two folders is stored once


class _RefusesBatches(SqlConnector):
    """The embedded CRM, except that every attach of several mails at once fails."""

    def __init__(self, url: str, error: Exception) -> None:
        super().__init__(url)
        self.error = error
        self.batches = 0

    def attach_many(self, items):  # type: ignore[override]
        self.batches += 1
        raise self.error


@pytest.mark.parametrize("error", [Retryable("database is locked"), Permanent("no such record in the CRM: contact:999")])
def test_a_batch_the_crm_refuses_is_attached_one_message_at_a_time(make_home, error):
    home = make_home(extra={"workers": 1, "batch": 16})
    for i in range(6):
        home.drop("VLeads", make_mail(sender=f"Person {i} <p{i}@firm{i}.example>", subject=f"Mail {i}"))
        home.drop("CRM sync", make_mail(sender=f"Person {i} <p{i}@firm{i}.example>", subject=f"Sync {i}"))
    crm = _RefusesBatches(f"sqlite:///{home.root / 'var' / 'crm.db'}", error)
    gw = home.gateway(connector=crm)
    try:
        summary = gw.run_once()
    finally:
        gw.close()
    assert crm.batches >= 1  # the batch path was taken, and refused
    assert summary == {"done": 12}
    dump = home.dump()
    assert sorted(e["subject"] for e in dump["emails"]) == sorted(
        [f"Mail {i}" for i in range(6)] + [f"Sync {i}" for i in range(6)]
    )
    assert len(dump["leads"]) == 6
    assert all(len(e["links"]) == 1 for e in dump["emails"])
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]] * 6


def test_a_batch_of_big_mails_is_parsed_in_parts_with_the_same_outcome(make_home, monkeypatch):
    import gateway.pipeline.claim as pipeline

    parts: list[int] = []
    by_size = pipeline.by_size

    def recorded(locs, budget):  # type: ignore[no-untyped-def]
        out = by_size(locs, budget)
        parts.extend(len(p) for p in out)
        return out

    monkeypatch.setattr(pipeline, "BATCH_BYTES", 1)  # every one of these mails is "big"
    monkeypatch.setattr(pipeline, "by_size", recorded)
    one_by_one = make_home(extra={"workers": 1, "batch": 1})
    in_parts = make_home(extra={"workers": 1, "batch": 64})
    for home in (one_by_one, in_parts):
        _mixed_mailbox(home)
    assert one_by_one.run_once() == in_parts.run_once() == {"done": 7, "review": 1, "skipped": 1}
    assert _view(in_parts) == _view(one_by_one)
    assert max(parts) == 1 and len(parts) >= 10  # each new copy parsed alone


def test_parts_by_size_keep_the_order_and_put_a_big_mail_alone(tmp_path):
    from dataclasses import replace

    from gateway.ledger import LocationRow
    from gateway.mailboxes.base import SourceRef
    from gateway.pipeline.claim import by_size as _by_size

    def loc(n: int, size: int) -> LocationRow:
        path = tmp_path / f"{n}.eml"
        path.write_bytes(b"x" * size)
        return LocationRow(n, None, SourceRef("s", "a", "f", str(n)), "new", str(path), None, (), (), None, (), None)  # type: ignore[arg-type]

    locs = [loc(1, 400), loc(2, 500), loc(3, 5000), loc(4, 100), loc(5, 950)]
    assert [[l.id for l in p] for p in _by_size(locs, 1000)] == [[1, 2], [3], [4], [5]]
    gone = replace(loc(6, 10), spool_path=str(tmp_path / "missing.eml"))
    assert [[l.id for l in p] for p in _by_size([*locs[:2], gone], 1000)] == [[1, 2, 6]]


def _one_batch(home) -> dict[int, str]:
    """Scan the mailbox and hand every queued copy to one worker as a single batch."""
    import queue

    gw = home.gateway()
    try:
        for source in gw.sources:
            source.scan_once()
        pks: list[int] = []
        while True:
            try:
                pks.append(gw.queue.get_nowait())
            except queue.Empty:
                break
        return gw.handle_many(pks)
    finally:
        gw.close()


def _tags(home) -> list[tuple[str, str, str]]:
    from gateway.ledger.schema import locations

    led = home.ledger()
    try:
        with led.engine.connect() as c:
            return sorted((r.folder, r.state, r.tags) for r in c.execute(locations.select()).all())
    finally:
        led.close()


SKIP_UNKNOWN = """
rules:
  - name: CRM sync folder
    when: {folder: CRM sync}
    then:
      - find: {who: counterpart, kinds: [contact, lead], pick: unique}
      - attach: {to: [found, domain], if_none: skip}
      - tag: [CRM sync, Synced]
      - stop
"""


def test_a_copy_in_the_batch_of_its_primary_is_evaluated_after_the_primarys_crm_work(make_home):
    """A new sender's mail in VLeads (it creates the lead) and the same mail in CRM sync (its
    rule skips unknown senders): one after the other the copy finds the lead and is tagged."""
    raw = make_mail(sender="Xena New <xena@new.example>", subject="Hi", message_id="<x1@new.example>")
    outcomes = []
    for batch in (1, 64):
        home = make_home(extra={"workers": 1, "batch": batch})
        (home.root / "rules" / "crm-sync.yaml").write_text(SKIP_UNKNOWN)
        home.drop("VLeads", raw)
        home.drop("CRM sync", raw)
        states = _one_batch(home) if batch > 1 else home.run_once()
        outcomes.append(_tags(home))
        assert "received" not in (states.values() if batch > 1 else states)
    assert (
        outcomes[0]
        == outcomes[1]
        == [("CRM sync", "applied", '["CRM sync", "Synced"]'), ("VLeads", "applied", '["CRM sync", "Synced"]')]
    )


FORWARDS = """
rules:
  - name: Look the original sender up
    when: {all: [{folder: VLeads}, {forwarded: true}]}
    then:
      - find: {who: original_sender, kinds: [contact, lead, account], pick: unique}
  - name: Forward of a known customer
    when: {all: [{folder: VLeads}, {forwarded: true}, {known: original_sender}]}
    then:
      - find: {who: original_sender, kinds: [contact, lead, account], pick: unique}
      - attach: {to: all, if_none: review}
      - tag: [CRM sync, Known customer]
      - stop
  - name: Forwarded to VLeads
    when: {all: [{folder: VLeads}, {forwarded: true}]}
    then:
      - find: {who: original_sender, kinds: [contact, lead, account], pick: unique}
      - create: {kind: lead, who: original_sender}
      - attach: {to: all, if_none: review}
      - tag: [CRM sync, New lead]
      - stop
"""


def test_a_forward_waits_for_the_lead_an_earlier_forward_of_its_batch_creates(make_home):
    """The person a rule looks up may come from the body (`original_sender`), not the headers:
    the batch notes what each evaluation looked up, and the second forward is evaluated again
    once the first has created the lead, as one after the other."""

    def forward(n: int) -> bytes:
        return make_mail(
            sender="Me <me@example.com>",
            subject=f"Fwd: quote {n}",
            body=f"FYI\n\n---------- Forwarded message ---------\nFrom: Olga Orig <olga@orig.example>\n"
            f"Subject: quote {n}\n\nhello\n",
        )

    views = []
    for batch in (1, 64):
        home = make_home(extra={"workers": 1, "batch": batch})
        (home.root / "rules" / "aa-forwards.yaml").write_text(FORWARDS)
        for n in (1, 2):
            home.drop("VLeads", forward(n))
        _one_batch(home) if batch > 1 else home.run_once()
        views.append((_tags(home), _view(home)))
    assert views[0] == views[1]
    assert sorted(t for _, _, t in views[1][0]) == ['["CRM sync", "Known customer"]', '["CRM sync", "New lead"]']
    assert views[1][1]["leads"] == [("Olga", "Orig", ("olga@orig.example",))]


@pytest.mark.postgres
def test_a_claim_the_ledger_refuses_does_not_hold_back_the_rest_of_its_batch(make_home):
    """A hostile Message-ID longer than the ledger's column: it is kept cut with a hashed
    identity, and were a claim still refused, the batch claims its other mails one by one."""
    import yaml

    from tests.crm.sql_backends import postgres_url

    with postgres_url() as ledger_url:
        home = make_home(extra={"workers": 1, "batch": 64})
        cfg = yaml.safe_load(home.config_path.read_text())
        cfg["ledger"]["url"] = ledger_url
        home.config_path.write_text(yaml.safe_dump(cfg))
        home.drop("VLeads", make_mail(sender="Ok <ok0@a.example>", subject="ok 0"))
        home.drop(
            "VLeads", make_mail(sender="Evil <evil@b.example>", subject="hostile", message_id="<" + "x" * 700 + "@b.example>")
        )
        home.drop("VLeads", make_mail(sender="Ok <ok1@c.example>", subject="ok 1"))
        states = _one_batch(home)
        assert sorted(states.values()) == ["done", "done", "done"]
        assert sorted(e["subject"] for e in home.dump()["emails"]) == ["hostile", "ok 0", "ok 1"]
        home.drop(
            "VContacts", make_mail(sender="Evil <evil@b.example>", subject="hostile", message_id="<" + "x" * 700 + "@b.example>")
        )
        home.run_once()  # the same hostile mail again, elsewhere: a copy of it, not a new message
        from gateway.ledger import Ledger

        ledger = Ledger(ledger_url)
        try:
            hostile = [m for m in ledger.messages_in(["done"]) if m.subject == "hostile"]
            assert len(hostile) == 1 and len(ledger.locations_of(hostile[0].id)) == 2
            assert len(hostile[0].message_id) == 500  # kept cut to the column
        finally:
            ledger.close()
        assert sorted(e["subject"] for e in home.dump()["emails"]) == ["hostile", "ok 0", "ok 1"]


def test_a_ledger_refusing_one_claim_of_a_batch_binds_the_others(make_home, monkeypatch):
    from gateway.ledger import Ledger

    home = make_home(extra={"workers": 1, "batch": 64})
    for n in range(3):
        home.drop("VLeads", make_mail(sender=f"P{n} <p{n}@firm{n}.example>", subject=f"mail {n}"))
    bind_many = Ledger.bind_many

    def refusing(self, items):  # type: ignore[no-untyped-def]
        if any(b.subject == "mail 1" for b in items):
            raise Retryable("value too long for type character varying(500)")
        return bind_many(self, items)

    monkeypatch.setattr(Ledger, "bind_many", refusing)
    states = _one_batch(home)
    assert sorted(states.values()) == ["done", "done", "retrying"]
    assert sorted(e["subject"] for e in home.dump()["emails"]) == ["mail 0", "mail 2"]
