"""Rule engine: conditions, actions and the shipped rule packs, evaluated to a Plan.

`FakeCrm` below is a dict-backed test double of the read-only CRM view
(`gateway.engine.model.CrmView`: find, find_by_domain, thread_parents). The engine is pure —
it only looks things up — so these tests need no CRM; end-to-end tests with the real embedded
CRM live elsewhere. Messages are built directly as `gateway.message.parsing.Message` values.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.engine.model import EvalContext
from gateway.message import addresses
from gateway.message.parsing import Address, Attachment, AutomatedVerdict, Message
from tests.engine.fixtures import FakeCrm

ME = "me@example.com"


def addr(text: str) -> Address:
    name, address = email.utils.parseaddr(text)
    return Address(name, addresses.normalize(address))


def msg(
    frm: str | Sequence[str] = "Ann Lee <ann.lee@acme.example>",
    to: Sequence[str] = (ME,),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    sender: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    subject: str = "Hello",
    text: str = "Hi there",
    headers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[Attachment] = (),
    in_reply_to: Sequence[str] = (),
    references: Sequence[str] = (),
    raw_size: int = 2000,
    content_type: str = "text/plain",
) -> Message:
    froms = [frm] if isinstance(frm, str) else list(frm)
    return Message(
        raw_size=raw_size,
        raw_sha256="0" * 64,
        message_id="<m1@acme.example>",
        synthetic_id=False,
        content_hash="1" * 64,
        subject=subject,
        from_=tuple(addr(a) for a in froms),
        sender=tuple(addr(a) for a in sender),
        to=tuple(addr(a) for a in to),
        cc=tuple(addr(a) for a in cc),
        bcc=tuple(addr(a) for a in bcc),
        reply_to=tuple(addr(a) for a in reply_to),
        date=datetime(2026, 11, 21, 10, tzinfo=UTC),
        date_offset_minutes=60,
        date_source="date",
        headers=(("From", froms[0]), ("Subject", subject), *headers),
        text=text,
        html="",
        attachments=tuple(attachments),
        in_reply_to=tuple(in_reply_to),
        references=tuple(references),
        thread_index="",
        thread_topic="",
        content_type=content_type,
    )


def attachment(name: str = "a.pdf", inline: bool = False) -> Attachment:
    return Attachment(name, "application/pdf", 10, "2" * 64, b"x" * 10, inline=inline)


def ctx(folder: str = "VLeads", **kw: object) -> EvalContext:
    base: dict[str, object] = dict(
        source="local",
        source_type="maildir",
        folder=folder,
        mailbox=ME,
        owners=(ME,),
        freemail_domains=frozenset({"gmail.com", "outlook.com"}),
        crm_user=ME,
    )
    base.update(kw)
    return EvalContext(**base)  # type: ignore[arg-type]


def simple_automated(message: Message) -> list[AutomatedVerdict]:
    """Stand-in for `gateway.message.parsing.automated` while the parsing module is unfinished."""
    out = []
    for name, value in message.headers:
        n, v = name.lower(), value.strip().lower()
        if n == "auto-submitted" and v != "no" or n in ("x-autoreply", "x-autorespond"):
            out.append(AutomatedVerdict("auto_reply", f"{name}: {value}"))
        elif n == "return-path" and v == "<>":
            out.append(AutomatedVerdict("bounce", f"{name}: {value}"))
        elif n in ("list-id", "list-unsubscribe"):
            out.append(AutomatedVerdict("list", f"{name}: {value}"))
        elif n == "precedence" and v in ("bulk", "junk", "list"):
            out.append(AutomatedVerdict("bulk", f"{name}: {value}"))
    if message.content_type == "multipart/report":
        out.append(AutomatedVerdict("bounce", "Content-Type: multipart/report"))
    return out


# -- fixtures and helpers --------------------------------------------------------------------

import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from gateway.engine.loader import RuleSet, load_rules, load_rules_text  # noqa: E402
from gateway.engine.model import OnError, Plan, Target  # noqa: E402
from gateway.engine.plan import RuleFailure, evaluate, format_plan  # noqa: E402
from gateway.errors import Permanent  # noqa: E402
from gateway.message import parsing as message_module  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _automated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the parsing module's `automated` when it works, else the stand-in above."""
    try:
        message_module.automated(msg())
    except NotImplementedError:
        monkeypatch.setattr(message_module, "automated", simple_automated)


def rules(text: str) -> RuleSet:
    return load_rules_text(textwrap.dedent(text), "test.yaml")


def shipped() -> RuleSet:
    return load_rules(["rules/*.yaml"], base_dir=ROOT)


def run(ruleset: RuleSet, message: Message, context: EvalContext | None = None, crm: FakeCrm | None = None) -> Plan:
    return evaluate(message, context or ctx(), ruleset, crm or FakeCrm())


def holds(
    when: str, message: Message | None = None, context: EvalContext | None = None, crm: FakeCrm | None = None
) -> tuple[bool, list[str]]:
    """Does the condition (YAML flow text) hold? And the condition trace lines."""
    rs = rules(f"rules:\n  - name: t\n    when: {when}\n    then: [tag: [X]]\n")
    plan = run(rs, message or msg(), context, crm)
    return plan.touched == ["t"], [s.detail for s in plan.trace if s.event == "condition"]


# -- conditions ------------------------------------------------------------------------------


def test_folder_exact_and_inbox_case_insensitive() -> None:
    ok, why = holds("{folder: VLeads}")
    assert ok and why == ["folder 'VLeads' is 'VLeads'"]
    assert not holds("{folder: vleads}")[0]  # exact
    assert holds("{folder: INBOX}", context=ctx("inbox"))[0]
    assert holds("{folder: [Other, VLeads]}")[0]
    ok, why = holds("{folder: Other}")
    assert not ok and why == ["folder 'VLeads' is not 'Other'"]


def test_source_mailbox_direction() -> None:
    assert holds("{source: local}")[0] and not holds("{source: other}")[0]
    assert holds("{mailbox: ME@example.com}")[0]
    ok, why = holds("{direction: inbound}")
    assert ok and "direction is inbound" in why[0]
    sent = msg(frm=ME, to=["Bob <bob@x.example>"])
    assert holds("{direction: outbound}", sent)[0]
    # Sender alone makes it outbound too (a delegate sending for the owner)
    assert holds("{direction: outbound}", msg(sender=[ME]))[0]


@pytest.mark.parametrize(
    "match, expected",
    [
        ("ANN.LEE@ACME.EXAMPLE", True),  # a string is :is, case-insensitive
        ("{is: ann.lee@acme.example}", True),
        ("{is: [x@y.example, ann.lee@acme.example]}", True),
        ("{contains: LEE@}", True),
        ("{matches: 'ann.*@acme.?xample'}", True),
        ("{matches: 'ann@*'}", False),
        ("{regex: '^ann\\.lee@'}", True),
        ("{domain: acme.example}", True),
        ("{domain: example}", True),  # a subdomain of example
        ("{domain: cme.example}", False),
        ("[{domain: other.example}, {contains: ann}]", True),
        ("[bob@x.example, ann.lee@acme.example]", True),
    ],
)
def test_from_match_variants(match: str, expected: bool) -> None:
    assert holds(f"{{from: {match}}}")[0] is expected


def test_address_trace_names_the_address_and_test() -> None:
    ok, why = holds("{from: {domain: acme.example}}")
    assert why == ["from ann.lee@acme.example domain 'acme.example'"]
    ok, why = holds("{cc: x@y.example}")
    assert not ok and why == ["cc: no address (wanted is 'x@y.example')"]


def test_recipients_participants_counterpart() -> None:
    m = msg(frm=ME, to=["Bob <bob@x.example>"], cc=["carol@y.example"], bcc=["crm@gw.example"])
    assert holds("{to: bob@x.example}", m)[0]
    assert holds("{bcc: crm@gw.example}", m)[0]
    assert holds("{recipients: crm@gw.example}", m)[0]
    assert holds("{participants: me@example.com}", m)[0]
    assert holds("{counterpart: carol@y.example}", m)[0]
    assert not holds("{counterpart: crm@gw.example}", m)[0]  # Bcc never counts
    assert not holds("{counterpart: me@example.com}", m)[0]  # the owner never does
    assert holds("{reply_to: r@z.example}", msg(reply_to=["r@z.example"]))[0]
    assert holds("{sender: s@z.example}", msg(sender=["s@z.example"]))[0]
    assert holds("{sender: ann.lee@acme.example}")[0]  # no Sender header: the From


def test_subject_body_header_exists() -> None:
    m = msg(
        subject="Quote for 12 widgets",
        text="Please find the offer attached.",
        headers=[("X-Priority", "1 (Highest)"), ("X-Mailer", "Outlook")],
    )
    assert holds("{subject: {contains: QUOTE}}", m)[0]
    assert holds("{subject: 'quote for 12 widgets'}", m)[0]
    assert holds("{subject: {regex: '\\d+ widgets'}}", m)[0]
    assert holds("{subject: {matches: 'Quote*'}}", m)[0]
    assert holds("{body: {contains: offer}}", m)[0]
    ok, why = holds("{header: {name: x-priority, matches: '1*'}}", m)
    assert ok and why == ["header x-priority: '1 (Highest)' matches '1*'"]
    assert not holds("{header: {name: X-Spam, contains: yes}}", m)[0]
    assert holds("{exists: [X-Priority, X-Mailer]}", m)[0]
    ok, why = holds("{exists: [X-Priority, X-Other]}", m)
    assert not ok and why == ["exists: header X-Other missing"]


def test_size_powers_of_1024() -> None:
    m = msg(raw_size=10 * 1024 * 1024 + 1)
    assert holds("{size: {over: 10MB}}", m)[0]
    assert not holds("{size: {over: 10M}}", msg(raw_size=10 * 1024 * 1024))[0]
    assert holds("{size: {under: 2K}}", msg(raw_size=2047))[0]
    assert holds("{size: {over: 1KB, under: 1GB}}", msg(raw_size=5000))[0]


def test_attachments_inline_images_do_not_count() -> None:
    m = msg(attachments=[attachment(), attachment("logo.png", inline=True)])
    assert holds("{attachments: true}", m)[0]
    assert not holds("{attachments: {over: 1}}", m)[0]
    assert holds("{attachments: false}", msg(attachments=[attachment("x.png", inline=True)]))[0]
    ok, why = holds("{attachments: {over: 0}}", m)
    assert ok and why == ["1 attachment(s) (1 inline not counted) is over 0"]


def test_tagged() -> None:
    c = ctx(tags_present=frozenset({"To CRM"}))
    assert holds("{tagged: to crm}", context=c)[0]
    assert not holds("{tagged: [Other]}", context=c)[0]


def test_automated_names_the_header() -> None:
    m = msg(headers=[("Auto-Submitted", "auto-replied")])
    ok, why = holds("{automated: true}", m)
    assert ok and why == ["automated: auto_reply (Auto-Submitted: auto-replied)"]
    assert holds("{automated: [auto_reply, bounce]}", m)[0]
    assert not holds("{automated: [list]}", m)[0]
    assert not holds("{automated: true}")[0]
    assert holds("{automated: false}")[0]
    assert holds("{automated: [list]}", msg(headers=[("List-Id", "<news.x.example>")]))[0]


def test_known_sees_found_and_planned_records() -> None:
    crm = FakeCrm()
    crm.add("contact", "7", "ann.lee@acme.example")
    rs = rules("""
        rules:
          - name: find
            then: [find: {who: sender}]
          - name: known
            when: {known: sender}
            then: [tag: [Known]]
          - name: create for bob
            when: {from: bob@x.example}
            then: [create: {kind: lead}]
          - name: known later
            when: {known: sender}
            then: [tag: [Planned]]
        """)
    plan = run(rs, msg(), crm=crm)
    assert plan.tags_add == ["Known", "Planned"]
    assert "known sender ann.lee@acme.example: contact:7" in [s.detail for s in plan.trace]
    plan = run(rs, msg(frm="bob@x.example"), crm=crm)
    assert plan.tags_add == ["Planned"]


def test_all_any_not_and_implicit_all() -> None:
    assert holds("{all: [{folder: VLeads}, {direction: inbound}]}")[0]
    assert not holds("{all: [{folder: VLeads}, {direction: outbound}]}")[0]
    assert holds("{any: [{folder: X}, {direction: inbound}]}")[0]
    ok, why = holds("{not: {folder: X}}")
    assert ok and why == ["folder 'VLeads' is not 'X'", "not: inner condition did not hold"]
    ok, why = holds("{folder: VLeads, subject: nope}")  # several keys: all of them
    assert not ok and len(why) == 2


# -- shipped packs ---------------------------------------------------------------------------


def test_shipped_packs_load_in_name_order() -> None:
    rs = shipped()
    assert rs.files == ("rules/automated.yaml", "rules/bcc.yaml", "rules/crm-sync.yaml", "rules/folders.yaml")
    assert rs.names()[:1] == ["Skip auto-replies"]
    assert len(rs.fingerprint) == 64


def test_vleads_unknown_sender_creates_lead_named_from_display_name() -> None:
    crm = FakeCrm()
    plan = run(shipped(), msg(frm="Ann Lee <ann.lee@acme.example>"), ctx("VLeads"), crm)
    assert plan.outcome == "done"
    [c] = plan.creates
    assert c.key == "create:lead:ann.lee@acme.example"
    assert (c.kind, c.data.first_name, c.data.last_name, c.data.emails) == ("lead", "Ann", "Lee", ("ann.lee@acme.example",))
    assert c.data.company == "acme.example" and c.data.owner == ME
    assert plan.attach and plan.attach.targets == (Target(create_key=c.key),)
    assert plan.tags_add == ["CRM sync", "Synced"]
    assert plan.touched == ["Leads folder"]


def test_vleads_names_from_local_part_without_display_name() -> None:
    plan = run(shipped(), msg(frm="ann.lee@acme.example"))
    assert (plan.creates[0].data.first_name, plan.creates[0].data.last_name) == ("Ann", "Lee")
    plan = run(shipped(), msg(frm='"Lee, Ann" <al@acme.example>'))
    assert (plan.creates[0].data.first_name, plan.creates[0].data.last_name) == ("Ann", "Lee")


def test_vaccounts_creates_account_named_from_domain() -> None:
    plan = run(shipped(), msg(frm="Ann Lee <ann@sales.acme.example>"), ctx("VAccounts"))
    [c] = plan.creates
    assert (c.key, c.kind, c.data.name, c.data.domain) == (
        "create:account:sales.acme.example",
        "account",
        "Sales",
        "sales.acme.example",
    )
    plan = run(shipped(), msg(frm="ann@acme.example"), ctx("VAccounts"))
    assert plan.creates[0].data.name == "Acme"


def test_known_sender_attaches_and_creates_nothing() -> None:
    crm = FakeCrm()
    lead = crm.add("lead", "3", "ann.lee@acme.example")
    plan = run(shipped(), msg(), ctx("VContacts"), crm)  # a known lead in VContacts stays a lead
    assert plan.creates == []
    assert plan.attach and plan.attach.targets == (Target(ref=lead),)
    assert plan.found == {"ann.lee@acme.example": [lead]}


def test_vcontacts_links_new_contact_to_domain_account() -> None:
    crm = FakeCrm()
    acme = crm.add("account", "1", domain="acme.example")
    plan = run(shipped(), msg(), ctx("VContacts"), crm)
    [c] = plan.creates
    assert c.kind == "contact" and c.account == Target(ref=acme) and c.data.account == acme
    assert plan.attach and plan.attach.targets == (Target(create_key=c.key),)  # domain hit ≠ match


def test_domain_hit_is_not_a_match_and_freemail_is_never_a_domain() -> None:
    crm = FakeCrm()
    crm.add("account", "1", domain="acme.example")
    crm.add("account", "2", domain="gmail.com")
    plan = run(shipped(), msg(frm="new.person@acme.example"), ctx("VLeads"), crm)
    assert plan.found_by_domain == {"acme.example": [crm.records[0][0]]}
    assert [c.key for c in plan.creates] == ["create:lead:new.person@acme.example"]
    plan = run(shipped(), msg(frm="joe@gmail.com"), ctx("VLeads"), crm)
    assert plan.found_by_domain == {}
    assert ("find_by_domain", "gmail.com") not in crm.calls
    assert plan.creates[0].data.company == ""
    plan = run(shipped(), msg(frm="joe@gmail.com"), ctx("VAccounts"), crm)
    assert plan.creates == [] and plan.outcome == "review"  # no account from a freemail domain


def test_crm_sync_outbound_counterpart_is_to_and_cc_not_bcc_not_owner() -> None:
    crm = FakeCrm()
    bob = crm.add("contact", "1", "bob@x.example")
    carol = crm.add("lead", "2", "carol@y.example")
    m = msg(
        frm="Me <me@example.com>",
        to=["Bob <bob@x.example>", ME],
        cc=["carol@y.example"],
        bcc=["dave@z.example", "crm@gw.example"],
    )
    plan = run(shipped(), m, ctx("CRM sync", intake_addresses=("crm@gw.example",)), crm)
    assert plan.direction == "outbound"
    assert plan.counterparts == ("bob@x.example", "carol@y.example")
    assert plan.outcome == "done" and plan.creates == []
    assert plan.attach and plan.attach.targets == (Target(ref=bob), Target(ref=carol))
    looked_up = [a for kind, (a, *_) in ((k, v) for k, v in crm.calls if k == "find")]  # type: ignore[misc]
    assert looked_up == ["bob@x.example", "carol@y.example"]


def test_crm_sync_miss_goes_to_review_never_creates() -> None:
    plan = run(shipped(), msg(), ctx("CRM sync"), FakeCrm())
    assert plan.outcome == "review" and plan.creates == [] and plan.attach is None
    assert plan.review and plan.review.reason == "no record to attach to"
    assert plan.tags_add == ["CRM sync", "Synced"]  # applied after a person resolves


def test_crm_sync_attaches_to_account_by_domain() -> None:
    crm = FakeCrm()
    acme = crm.add("account", "1", domain="acme.example")
    plan = run(shipped(), msg(), ctx("CRM sync"), crm)
    assert plan.outcome == "done" and plan.attach and plan.attach.targets == (Target(ref=acme),)


def test_automated_mail_is_skipped_by_the_pack_and_never_creates() -> None:
    m = msg(headers=[("Auto-Submitted", "auto-replied")])
    plan = run(shipped(), m)
    assert (plan.outcome, plan.reason, plan.creates, plan.tags_add) == ("skipped", "auto_reply", [], [])
    assert "automated: auto_reply (Auto-Submitted: auto-replied)" in [s.detail for s in plan.trace]
    # Without the pack, create itself refuses automated mail unless allow_automated: true.
    rs = rules("""
        rules:
          - name: leads
            then: [find: {}, create: {kind: lead}, attach: {if_none: skip}]
        """)
    plan = run(rs, msg(headers=[("Precedence", "bulk")]))
    assert plan.creates == [] and plan.outcome == "skipped"
    rs = rules("""
        rules:
          - name: leads
            then: [find: {}, create: {kind: lead, allow_automated: true}, attach: {}]
        """)
    assert len(run(rs, msg(headers=[("Precedence", "bulk")])).creates) == 1


def test_owner_internal_intake_never_created() -> None:
    rs = rules("""
        rules:
          - name: everyone
            then: [find: {who: participants}, create: {kind: contact, who: participants}, attach: {}]
        """)
    m = msg(frm="Ann <ann@acme.example>", to=[ME, "crm@gw.example", "colleague@corp.example"], cc=["x@sub.corp.example"])
    c = ctx(intake_addresses=("crm@gw.example",), internal_domains=("corp.example",))
    plan = run(rs, m, c)
    assert [p.address for p in plan.creates] == ["ann@acme.example"]


def test_exclude_skips_when_every_counterpart_is_excluded() -> None:
    c = ctx(exclude=("*@bank.example",))
    plan = run(shipped(), msg(frm="advisor@bank.example"), c)
    assert (plan.outcome, plan.reason, plan.creates) == ("skipped", "excluded", [])
    m = msg(frm=ME, to=["advisor@bank.example", "bob@x.example"])
    rs = rules("""
        rules:
          - name: out
            then: [find: {who: counterpart}, create: {kind: contact, who: counterpart}, attach: {}]
        """)
    plan = run(rs, m, c)
    assert [p.address for p in plan.creates] == ["bob@x.example"]


# -- find: pick, precedence ------------------------------------------------------------------

TWO = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)


def _two_contacts() -> FakeCrm:
    crm = FakeCrm()
    crm.add("contact", "1", "ann.lee@acme.example", created_at=TWO[1])
    crm.add("contact", "2", "ann.lee@acme.example", created_at=TWO[0])
    return crm


def test_pick_unique_ambiguous_goes_to_review_and_nothing_for_that_address() -> None:
    crm = _two_contacts()
    plan = run(shipped(), msg(), ctx("VLeads"), crm)
    assert plan.outcome == "review" and plan.creates == [] and plan.attach is None
    assert plan.review and plan.review.candidates == (("ann.lee@acme.example", tuple(r for r, _, _ in crm.records)),)
    assert "2 contacts" in plan.review.reason


def test_pick_newest_and_all() -> None:
    crm = _two_contacts()
    rs = rules("rules:\n  - name: n\n    then: [find: {pick: newest}, attach: {}]\n")
    plan = run(rs, msg(), crm=crm)
    assert plan.attach and [t.label() for t in plan.attach.targets] == ["contact:1"]
    rs = rules("rules:\n  - name: n\n    then: [find: {pick: all}, attach: {}]\n")
    plan = run(rs, msg(), crm=crm)
    assert plan.attach and [t.label() for t in plan.attach.targets] == ["contact:1", "contact:2"]


def test_kinds_are_the_precedence() -> None:
    crm = FakeCrm()
    crm.add("lead", "9", "ann.lee@acme.example")
    crm.add("contact", "4", "ann.lee@acme.example")
    rs = rules("rules:\n  - name: n\n    then: [find: {kinds: [contact, lead]}, attach: {}]\n")
    plan = run(rs, msg(), crm=crm)
    assert plan.attach and [t.label() for t in plan.attach.targets] == ["contact:4"]


# -- attach / thread / skip / ignored / review / on_error ------------------------------------


def test_thread_attach_for_unknown_sender() -> None:
    crm = FakeCrm()
    deal = crm.add("contact", "5", "bob@x.example")
    crm.threads["<orig@example.com>"] = [deal]
    m = msg(frm="stranger@other.example", in_reply_to=["<orig@example.com>"])
    plan = run(shipped(), m, ctx("CRM sync"), crm)
    assert plan.outcome == "done" and plan.attach and plan.attach.targets == (Target(ref=deal),)
    assert ("thread_parents", ("<orig@example.com>",)) in crm.calls
    assert any("thread on contact:5" in s.detail for s in plan.trace)


def test_skip_drops_everything_planned() -> None:
    rs = rules("""
        rules:
          - name: plan
            then: [find: {}, create: {kind: lead}, attach: {}, tag: [A]]
          - name: skip it
            when: {subject: {contains: unsubscribe}}
            then: [skip: {reason: newsletter}]
          - name: never
            then: [tag: [B]]
        """)
    plan = run(rs, msg(subject="Please unsubscribe me"))
    assert (plan.outcome, plan.reason, plan.creates, plan.attach, plan.tags_add) == ("skipped", "newsletter", [], None, [])
    assert plan.touched == ["plan", "skip it"]


def test_ignored_when_no_rule_touches() -> None:
    plan = run(shipped(), msg(), ctx("INBOX"))
    assert (plan.outcome, plan.touched, plan.creates, plan.tags_add) == ("ignored", [], [], [])
    assert all(s.event in ("note", "not-matched", "condition") for s in plan.trace)


def test_review_action_tags_untag_move_stop() -> None:
    rs = rules("""
        rules:
          - name: r
            then: [tag: [A, B], untag: [B, Old], review: {reason: check me}, move: Done, stop]
          - name: never
            then: [tag: [C]]
        """)
    plan = run(rs, msg())
    assert (plan.outcome, plan.reason, plan.tags_add, plan.tags_remove, plan.move) == (
        "review",
        "check me",
        ["A"],
        ["B", "Old"],
        "Done",
    )
    assert plan.touched == ["r"]


def test_on_error_from_last_touched_rule_else_default() -> None:
    rs = rules("""
        rules:
          - name: a
            then: [tag: [A]]
            on_error: [tag: [Broken], move: Errors]
          - name: b
            when: {folder: Nope}
            then: [tag: [B]]
            on_error: {tag: Other}
        """)
    plan = run(rs, msg(), ctx(error_tags=("Err",)))
    assert plan.on_error == OnError(tags=("Broken",), move="Errors")
    plan = run(rules("rules:\n  - name: a\n    then: [tag: [A]]\n"), msg(), ctx(error_tags=("Err",)))
    assert plan.on_error == OnError(tags=("Err",))


def test_if_none_error_raises_permanent_with_plan() -> None:
    rs = rules("""
        rules:
          - name: strict
            then: [find: {}, attach: {if_none: error}]
            on_error: [tag: [CRM error, Unknown sender]]
        """)
    with pytest.raises(RuleFailure) as info:
        run(rs, msg())
    assert isinstance(info.value, Permanent)
    assert info.value.plan.on_error.tags == ("CRM error", "Unknown sender")
    assert "no record to attach to" in str(info.value)


def test_fields_templates_assign_and_creates_order() -> None:
    rs = rules("""
        rules:
          - name: r
            then:
              - find: {}
              - create: {kind: contact, fields: {description: "From {from.name} <{from.address}> re {subject} in {mailbox}"}}
              - link_account: {create: true}
              - assign: {owner: boss@example.com}
              - attach: {}
        """)
    plan = run(rs, msg(subject="Widgets"))
    assert [c.key for c in plan.creates] == ["create:account:acme.example", "create:contact:ann.lee@acme.example"]
    contact = plan.creates[1]
    assert contact.data.fields == {"description": "From Ann Lee <ann.lee@acme.example> re Widgets in me@example.com"}
    assert contact.account == Target(create_key="create:account:acme.example")
    assert {c.data.owner for c in plan.creates} == {"boss@example.com"}


def test_format_plan_and_json() -> None:
    plan = run(shipped(), msg(), ctx("VLeads"))
    text = format_plan(plan)
    assert "outcome: done" in text
    assert "create:lead:ann.lee@acme.example: lead 'Ann Lee' <ann.lee@acme.example>" in text
    assert "✓ condition: folder 'VLeads' is 'VLeads'" in text
    assert plan.to_json()["creates"][0]["key"] == "create:lead:ann.lee@acme.example"


# -- parsed fixtures (tests/data) ------------------------------------------------------------


def _parsed(name: str) -> Message:
    raw = (ROOT / "tests" / "data" / name).read_bytes()
    try:
        return message_module.parse(raw)
    except NotImplementedError:
        pytest.skip("gateway.message.parsing.parse is not implemented yet")


@pytest.mark.parametrize(
    "name, reason, evidence",
    [
        ("auto-reply.eml", "auto_reply", "auto_reply (Auto-Submitted: auto-replied)"),
        ("newsletter.eml", "list", "list (List-Id: Acme News <news.acme.example>)"),
    ],
)
def test_parsed_automated_mail_is_skipped(name: str, reason: str, evidence: str) -> None:
    plan = run(shipped(), _parsed(name), ctx("VLeads", mailbox="bob@example.com", owners=("bob@example.com",)))
    assert (plan.outcome, plan.reason, plan.creates) == ("skipped", reason, [])
    assert any(evidence in s.detail for s in plan.trace)


def test_parsed_plain_mail_creates_a_lead() -> None:
    plan = run(shipped(), _parsed("plain.eml"), ctx("VLeads", mailbox="bob@example.com", owners=("bob@example.com",)))
    assert plan.outcome == "done" and plan.direction == "inbound"
    [c] = plan.creates
    assert (c.key, c.data.first_name, c.data.last_name) == ("create:lead:ann@acme.example", "Ann", "Lee")
