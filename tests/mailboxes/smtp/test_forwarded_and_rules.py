"""`who: original_sender` / `forwarded:` in the engine, and the shipped `bcc.yaml` pack, on parsed
messages with the dict-backed CRM double of tests/unit/test_engine.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.engine.forwarded import original_sender
from gateway.engine.loader import load_rules, load_rules_text
from gateway.engine.model import EvalContext
from gateway.engine.plan import evaluate
from gateway.message.parsing import parse
from tests.engine.fixtures import FakeCrm
from tests.mail import make_mail

REPO = Path(__file__).resolve().parents[3]
ME = "me@example.com"
INTAKE = "crm+s3cretToken0123456789@example.com"


def bcc_ctx() -> EvalContext:
    return EvalContext(
        source="bcc",
        source_type="smtp",
        folder="BCC",
        mailbox=ME,
        owners=(ME,),
        intake_addresses=(INTAKE,),
        internal_domains=("example.com",),
        crm_user=ME,
    )


def bcc_rules():
    return load_rules([REPO / "rules" / "*.yaml"], base_dir=REPO)


@pytest.mark.parametrize(
    "marker,line,want",
    [
        ("---------- Forwarded message ---------", "From: Eve Stone <eve@stone.example>", "eve@stone.example"),
        ("-----Original Message-----", "From: Stone, Eve [mailto:eve@stone.example]", "eve@stone.example"),
        ("Begin forwarded message:", "> From: eve@stone.example", "eve@stone.example"),
        ("-------- Weitergeleitete Nachricht --------", "Von: Eve Stone <Eve@Stone.example>", "Eve@stone.example"),
        ("________________________________", "*From:* Eve Stone <eve@stone.example>", "eve@stone.example"),
    ],
)
def test_the_forwarded_header_block_names_the_original_sender(marker, line, want):
    text = f"Please file this.\n\n{marker}\n{line}\nDate: today\nSubject: hi\n\nbody\n"
    got = original_sender(parse(make_mail(sender=ME, to=INTAKE, body=text)))
    assert got is not None and [a.address for a in got.senders] == [want]


def test_an_attached_message_wins_and_plain_mail_is_not_a_forward():
    fwd = parse((REPO / "tests" / "data" / "forwarded.eml").read_bytes())
    got = original_sender(fwd)
    assert got is not None and [a.address for a in got.senders] == ["carol@acme.example"]
    assert "message/rfc822" in got.evidence
    assert original_sender(parse(make_mail(sender=ME, body="From: nobody, just a line\nhi"))) is None


def test_bcc_pack_outbound_counterparts_are_to_and_cc_never_the_owner_intake_or_colleagues():
    crm = FakeCrm()
    ann = crm.add("contact", "c1", "ann@acme.example")
    m = parse(make_mail(sender=f"Me <{ME}>", to=["ann@acme.example", INTAKE], cc=["dan@newco.example", "pat@example.com"]))
    plan = evaluate(m, bcc_ctx(), bcc_rules(), crm)
    assert plan.direction == "outbound" and plan.outcome == "done"
    assert plan.counterparts == ("ann@acme.example", "dan@newco.example")
    assert [(c.kind, c.address) for c in plan.creates] == [("lead", "dan@newco.example")]
    assert plan.attach is not None and any(t.ref == ann for t in plan.attach.targets)


def test_bcc_pack_forward_to_the_intake_uses_the_original_sender():
    crm = FakeCrm()
    carol = crm.add("lead", "l1", "carol@acme.example")
    raw = (REPO / "tests" / "data" / "forwarded.eml").read_bytes()
    raw = raw.replace(b"From: Ann Lee <ann@acme.example>", f"From: {ME}".encode()).replace(
        b"To: bob@example.com", f"To: {INTAKE}".encode()
    )
    plan = evaluate(parse(raw), bcc_ctx(), bcc_rules(), crm)
    assert plan.touched == ["BCC intake - forwarded mail"]
    assert plan.creates == [] and plan.attach is not None and [t.ref for t in plan.attach.targets] == [carol]
    assert any("original sender carol@acme.example" in s.detail for s in plan.trace)


def test_original_sender_is_a_who_an_address_test_and_known_value():
    rules = load_rules_text("""
rules:
  - name: forwarded from acme
    when: {forwarded: true, original_sender: {domain: acme.example}, not: {known: original_sender}}
    then:
      - create: {kind: contact, who: original_sender}
      - attach: {}
""")
    raw = (REPO / "tests" / "data" / "forwarded.eml").read_bytes()
    plan = evaluate(parse(raw), bcc_ctx(), rules, FakeCrm())
    assert [(c.kind, c.address) for c in plan.creates] == [("contact", "carol@acme.example")]
    plain = evaluate(parse(make_mail(sender="x@acme.example")), bcc_ctx(), rules, FakeCrm())
    assert plain.outcome == "ignored"
