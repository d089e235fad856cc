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
    home.drop("VLeads", make_mail(sender="Bot <noreply@shop.example>", subject="Automatic reply: away",
                                  headers={"Auto-Submitted": "auto-replied"}))
    home.drop("VContacts", make_mail(sender="Carl Coe <carl@coe.example>", subject="Quote", message_id="<c1@coe.example>"))
    shared = make_mail(sender="Dana Dee <dana@dee.example>", subject="In two folders", message_id="<d1@dee.example>")
    home.drop("VContacts", shared)
    home.drop("VAccounts", shared)
    # CRM sync: one from a contact created above, a reply to it from a stranger, a stranger alone
    home.drop("CRM sync", make_mail(sender="Carl Coe <carl@coe.example>", subject="Project", message_id="<p1@coe.example>"))
    home.drop("CRM sync", make_mail(sender="Partner <boss@partner.example>", subject="Re: Project",
                                    in_reply_to="<p1@coe.example>"))
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", subject="Unknown"))


def _view(home) -> dict[str, Any]:
    """What a user sees in the CRM, without ids and times."""
    crm = home.dump()
    names = {(kind[:-1] if kind != "accounts" else "account", r["id"]): r.get("name") or f"{r['first_name']} {r['last_name']}"
             for kind in ("leads", "contacts", "accounts") for r in crm[kind]}
    return {
        "leads": sorted((r["first_name"], r["last_name"], tuple(r["emails"])) for r in crm["leads"]),
        "contacts": sorted((r["first_name"], r["last_name"], tuple(r["emails"])) for r in crm["contacts"]),
        "accounts": sorted((r["name"], r["domain"]) for r in crm["accounts"]),
        "emails": sorted((e["subject"], tuple(sorted(names[(l["kind"], l["id"])] for l in e["links"])),
                          len(e["attachments"])) for e in crm["emails"]),
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
    assert sorted(e["subject"] for e in dump["emails"]) == sorted([f"Mail {i}" for i in range(6)] + [f"Sync {i}" for i in range(6)])
    assert len(dump["leads"]) == 6
    assert all(len(e["links"]) == 1 for e in dump["emails"])
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]] * 6


def test_a_batch_of_big_mails_is_parsed_in_parts_with_the_same_outcome(make_home, monkeypatch):
    import gateway.pipeline as pipeline

    parts: list[int] = []
    by_size = pipeline._by_size

    def recorded(locs, budget):  # type: ignore[no-untyped-def]
        out = by_size(locs, budget)
        parts.extend(len(p) for p in out)
        return out

    monkeypatch.setattr(pipeline, "BATCH_BYTES", 1)  # every one of these mails is "big"
    monkeypatch.setattr(pipeline, "_by_size", recorded)
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
    from gateway.pipeline import _by_size
    from gateway.sources.base import SourceRef

    def loc(n: int, size: int) -> LocationRow:
        path = tmp_path / f"{n}.eml"
        path.write_bytes(b"x" * size)
        return LocationRow(n, None, SourceRef("s", "a", "f", str(n)), "new", str(path), None, (), (), None, (), None)  # type: ignore[arg-type]

    locs = [loc(1, 400), loc(2, 500), loc(3, 5000), loc(4, 100), loc(5, 950)]
    assert [[l.id for l in p] for p in _by_size(locs, 1000)] == [[1, 2], [3], [4], [5]]
    gone = replace(loc(6, 10), spool_path=str(tmp_path / "missing.eml"))
    assert [[l.id for l in p] for p in _by_size([*locs[:2], gone], 1000)] == [[1, 2, 6]]
