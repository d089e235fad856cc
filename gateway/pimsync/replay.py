"""Open journal intents, redone at the start of a round: a crash between an intent and its
end leaves the write perhaps done, perhaps not, and the redo is safe either way (a card's href
is fixed by its record; a record made from a card is found by its key; a card removed for
the CRM's sake is removed, and its link dropped, rather than read as deleted by its user)."""

from __future__ import annotations

from gateway.errors import Permanent
from gateway.ledger.pim import Intent
from gateway.pimsync.steps import BookSteps


def replay(steps: BookSteps) -> int:
    """Redo each open intent of the book; how many there were."""
    name = steps.book.name
    intents = steps.pim.open_intents(name)
    for intent in intents:
        try:
            _redo(steps, intent)
        except Permanent as exc:  # refused for good (a card that is no vCard): closed, and said
            steps.pim.done(name, intent.action, intent.key)
            steps.tally.skipped += 1
            steps.tally.notes.append(f"{intent.key}: skipped: {exc}")
    return len(intents)


def _redo(steps: BookSteps, intent: Intent) -> None:
    name = steps.book.name
    if intent.action == "put_card":
        rec = steps.crm.get_contact(intent.key)
        if rec is not None and rec.owner == steps.book.crm_user and steps.pim.by_record(name, "contact", rec.id) is None:
            steps.create_card(rec)
        else:
            steps.pim.done(name, intent.action, intent.key)
    elif intent.action == "create_crm":
        card = steps.client.get(intent.key)
        if card is not None and steps.pim.by_href(name, intent.key) is None:
            steps.create_record(card)
        else:
            steps.pim.done(name, intent.action, intent.key)
    elif intent.action == "delete_card":
        link = steps.pim.by_href(name, intent.key)
        if link is not None:  # finish the removal the crash interrupted
            steps.client.delete(intent.key)
            steps.pim.drop_link(name, intent.key)
        steps.pim.done(name, intent.action, intent.key)
    else:
        steps.pim.done(name, intent.action, intent.key)  # an action this version does not know
