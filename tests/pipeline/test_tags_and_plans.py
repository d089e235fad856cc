"""The pipeline's pure parts: the one function deciding a copy's tags from its message's
outcome, and a stored Plan read back as the Plan the replay executes."""

from __future__ import annotations

import pytest

from gateway.config import TagsConfig
from gateway.crm.base import PartyData, PartyRef
from gateway.engine.model import OnError, Plan, PlannedAttach, PlannedCreate, ReviewInfo, Target
from gateway.pipeline.tagging import TagChange, tags_for

TAGS = TagsConfig(error=["CRM error"], review=["CRM review"])
PLANNED = TagChange(("Synced",), ("Todo",), "Archive")


@pytest.mark.parametrize("outcome", ["ignored", "skipped"])
def test_nothing_is_written_back_for_a_message_the_rules_left_alone(outcome):
    assert tags_for(outcome, ("CRM sync",), PLANNED, None, TAGS) is None


def test_done_sets_the_planned_tags_and_clears_an_earlier_review_or_error_tag():
    change = tags_for("done", ("CRM review", "CRM error", "Other"), PLANNED, None, TAGS)
    assert change == TagChange(("Synced",), ("Todo", "CRM review", "CRM error"), "Archive")


def test_done_keeps_an_error_or_review_tag_the_rules_set_themselves():
    planned = TagChange(("CRM review",), (), None)
    assert tags_for("done", ("CRM review",), planned, None, TAGS) == TagChange(("CRM review",), (), None)


def test_review_sets_the_review_tags_only():
    assert tags_for("review", (), PLANNED, None, TAGS) == TagChange(("CRM review",), (), None)


def test_quarantined_takes_the_plans_on_error_else_the_configured_error_tags():
    assert tags_for("quarantined", (), PLANNED, None, TAGS) == TagChange(("CRM error",), (), None)
    on_error = OnError(("Broken",), ("Synced",), "Errors")
    assert tags_for("quarantined", (), PLANNED, on_error, TAGS) == TagChange(("Broken",), ("Synced",), "Errors")


def test_a_stored_plan_reads_back_as_the_plan_that_was_stored():
    acme = PartyRef("account", "7", "Acme")
    plan = Plan(
        outcome="review",
        direction="outbound",
        counterparts=("ann@acme.example",),
        reason="two records",
        creates=[
            PlannedCreate(
                "create:account:acme.example",
                "account",
                "acme.example",
                PartyData(kind="account", name="Acme", domain="acme.example"),
                "accounts",
            ),
            PlannedCreate(
                "create:lead:ann@acme.example",
                "lead",
                "ann@acme.example",
                PartyData(kind="lead", emails=("ann@acme.example",), first_name="Ann", account=acme, fields={"source": "mail"}),
                "leads",
                account=Target(create_key="create:account:acme.example"),
            ),
        ],
        attach=PlannedAttach((Target(ref=acme), Target(create_key="create:lead:ann@acme.example")), False, ("leads",)),
        tags_add=["Synced"],
        tags_remove=["Todo"],
        move="Archive",
        review=ReviewInfo("two records", (("ann@acme.example", (acme, PartyRef("contact", "9", "Ann"))),)),
        on_error=OnError(("Broken",), ("Synced",), "Errors"),
        touched=["leads", "accounts"],
    )
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.to_json() == plan.to_json()
