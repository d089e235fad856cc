"""The transition tables of messages and copies, and the ledger refusing a move they forbid."""

from __future__ import annotations

import json

import pytest

from gateway.ledger import (
    LOCATION_MOVES,
    MESSAGE_MOVES,
    TERMINAL,
    Finish,
    IllegalTransition,
    Ledger,
    LocationState,
    MessageState,
    SourceRef,
)
from gateway.ledger.states import check_location_move, check_message_move

M, L = MessageState, LocationState


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    yield led
    led.close()


def test_states_are_the_stored_strings():
    assert M.CRM_DONE == "crm_done" and json.dumps({"s": M.REVIEW}) == '{"s": "review"}'
    assert f"{M.DONE_UNTAGGED}" == "done_untagged" and str(L.NONE) == "none"
    assert {s.value for s in M} == {
        "received",
        "processing",
        "crm_done",
        "done",
        "done_untagged",
        "ignored",
        "skipped",
        "review",
        "retrying",
        "quarantined",
        "forgotten",
    }
    assert {s.value for s in L} == {"new", "waiting", "tagging", "applied", "untagged", "none"}
    assert "review" in TERMINAL and "crm_done" not in TERMINAL


def test_every_state_has_its_row_in_the_tables():
    assert set(MESSAGE_MOVES) == set(M) and set(LOCATION_MOVES) == set(L)


@pytest.mark.parametrize(("frm", "to"), [(f, t) for f, tos in MESSAGE_MOVES.items() for t in tos])
def test_every_legal_message_move_is_accepted(frm, to):
    assert check_message_move(frm, to) is to
    assert check_message_move(frm.value, to.value) is to  # the plain strings of today's callers too


@pytest.mark.parametrize(("frm", "to"), [(f, t) for f, tos in LOCATION_MOVES.items() for t in tos])
def test_every_legal_location_move_is_accepted(frm, to):
    assert check_location_move(frm, to) is to


@pytest.mark.parametrize(
    ("frm", "to"),
    [
        (M.DONE, M.PROCESSING),
        (M.DONE, M.RECEIVED),  # only `reopen` with steps to redo (REDO_MOVES)
        (M.DONE, M.RETRYING),
        (M.DONE, M.QUARANTINED),
        (M.DONE_UNTAGGED, M.DONE),
        (M.CRM_DONE, M.QUARANTINED),
        (M.CRM_DONE, M.IGNORED),
        (M.CRM_DONE, M.PROCESSING),  # CRM work is never undone
        (M.REVIEW, M.DONE),
        (M.REVIEW, M.PROCESSING),
        (M.IGNORED, M.DONE),
        (M.SKIPPED, M.RETRYING),
        (M.QUARANTINED, M.DONE),
        (M.QUARANTINED, M.PROCESSING),
        (M.FORGOTTEN, M.RECEIVED),
        (M.FORGOTTEN, M.DONE),
    ],
)
def test_illegal_message_moves_are_refused_naming_both_states(frm, to):
    assert to not in MESSAGE_MOVES[frm]
    with pytest.raises(IllegalTransition) as err:
        check_message_move(frm, to, 7)
    assert (err.value.from_state, err.value.to_state, err.value.pk) == (frm, to, 7)
    assert f"from '{frm}' to '{to}'" in str(err.value)


@pytest.mark.parametrize(("frm", "to"), [(L.APPLIED, L.TAGGING), (L.UNTAGGED, L.TAGGING), (L.NONE, L.TAGGING)])
def test_illegal_location_moves_are_refused(frm, to):
    with pytest.raises(IllegalTransition, match=f"from '{frm}' to '{to}'"):
        check_location_move(frm, to)


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError):
        check_message_move("received", "finished")


def _message(ledger, state="received", key="k1"):
    loc = ledger.receive(SourceRef("src", "me@example.com", "VLeads", key), None)
    return loc, ledger.bind(loc.id, message_id=f"<{key}@x>", content_hash="h", state=state)


def _snapshot(ledger, message_pk):
    return ledger.message(message_pk), ledger.locations_of(message_pk), ledger.events(message_pk), ledger.journal(message_pk)


def test_an_illegal_move_through_the_ledger_raises_and_changes_nothing(ledger):
    loc, b = _message(ledger)
    done = ledger.finish(b.message_pk, state="done", results={}, location_pk=loc.id, tags=["crm"])
    assert done == [] and ledger.message(b.message_pk).state is M.DONE
    before = _snapshot(ledger, b.message_pk)
    with pytest.raises(IllegalTransition, match="from 'done' to 'processing'"):
        ledger.start_plan(b.message_pk, '{"outcome": "done"}', ["create:lead:a@x"], "evaluated again")
    with pytest.raises(IllegalTransition, match="from 'done' to 'quarantined'"):
        ledger.set_state(b.message_pk, "quarantined", "too late")
    with pytest.raises(IllegalTransition, match="from 'done' to 'received'"):
        ledger.reopen(b.message_pk)
    with pytest.raises(IllegalTransition, match="from 'done' to 'crm_done'"):
        ledger.finish_many(
            [
                Finish(
                    b.message_pk,
                    state="crm_done",
                    results={"attach": {"email_id": 1}},
                    results_are_new=True,
                    location_pk=loc.id,
                    tags=["other"],
                    location_state="applied",
                )
            ]
        )
    with pytest.raises(IllegalTransition, match="from 'applied' to 'tagging'"):
        ledger.take_location(loc.id, ["applied"], "tagging")
    assert _snapshot(ledger, b.message_pk) == before  # no state, journal, event or tag written


def test_a_batch_with_one_illegal_move_writes_none_of_it(ledger):
    loc1, one = _message(ledger, key="a")
    loc2, two = _message(ledger, key="b")
    ledger.set_state(two.message_pk, "crm_done")
    before = _snapshot(ledger, one.message_pk), _snapshot(ledger, two.message_pk)
    with pytest.raises(IllegalTransition, match="from 'crm_done' to 'ignored'"):
        ledger.finish_many(
            [
                Finish(one.message_pk, state="done", location_pk=loc1.id),
                Finish(two.message_pk, state="ignored", location_pk=loc2.id, location_state="none"),
            ]
        )
    assert (_snapshot(ledger, one.message_pk), _snapshot(ledger, two.message_pk)) == before


def test_writes_return_the_new_row(ledger):
    loc, b = _message(ledger)
    assert b.row is not None and b.row.state is M.RECEIVED and b.state is M.RECEIVED
    row = ledger.set_state(b.message_pk, "processing", "evaluated")
    assert row is not None and row.state is M.PROCESSING and row.reason == "evaluated"
    assert ledger.set_state(b.message_pk, "done", only_from=["crm_done"]) is None  # not from there: unchanged
    planned = ledger.plan_location(loc.id, ["crm"], [], None)
    assert planned.state is L.WAITING and planned.tags_add == ("crm",)
    taken = ledger.take_location(loc.id, ["waiting"], "tagging")
    assert taken is not None and taken.state is L.TAGGING
    assert ledger.take_location(loc.id, ["waiting"], "tagging") is None  # the one caller that made it
    tagged = ledger.location_tagged(loc.id, ["crm"], "applied")
    assert tagged.state is L.APPLIED and tagged.tags == ("crm",)
    assert ledger.reset_attempts(b.message_pk).attempts == 0


def test_a_copy_binding_carries_its_message(ledger):
    _, first = _message(ledger)
    loc = ledger.receive(SourceRef("src", "me@example.com", "VContacts", "k2"), None)
    copy = ledger.bind(loc.id, message_id="<k1@x>", content_hash="h", state="received")
    assert not copy.primary and copy.row is not None and copy.row.id == first.message_pk


def test_a_late_outcome_leaves_a_quarantined_or_forgotten_message_alone(ledger):
    loc, b = _message(ledger)
    ledger.set_state(b.message_pk, "quarantined", "took more than 30 s to parse")
    ledger.finish(b.message_pk, state="done", location_pk=loc.id)
    assert ledger.message(b.message_pk).state is M.QUARANTINED
    assert ledger.schedule_retry(b.message_pk, "late", 1) == 0  # final: nothing sent back


def test_a_message_starts_received_or_processing(ledger):
    loc = ledger.receive(SourceRef("src", "me@example.com", "VLeads", "k9"), None)
    with pytest.raises(IllegalTransition, match="to 'done'"):
        ledger.bind(loc.id, message_id="<k9@x>", content_hash="h", state="done")
    assert ledger.location(loc.id).message_pk is None


def test_a_mail_a_person_files_by_hand_starts_in_review_and_only_a_decision_moves_it(ledger):
    _loc, bound = _message(ledger, state="review", key="k10")
    assert (bound.primary, bound.state) == (True, "review")
    with pytest.raises(IllegalTransition, match="from 'review' to 'processing'"):
        ledger.set_state(bound.message_pk, "processing")  # no worker evaluates it
    assert ledger.set_state(bound.message_pk, "crm_done").state == "crm_done"  # the person's decision
