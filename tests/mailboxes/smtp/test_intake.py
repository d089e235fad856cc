"""The BCC intake end to end: a real aiosmtpd listener inside the running gateway, smtplib
(and swaks) as clients, and what a user sees: reply codes, CRM records, ledger states."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from email.message import EmailMessage

import pytest

from tests.mailboxes.smtp.fixtures import (
    DEADLINE,
    INTAKE,
    ME,
    TOKEN,
    client,
    crlf,
    emails_by_subject,
    make_mail,
    running,
    seed,
    set_source,
    settled,
    spooled_files,
)
from tests.waiting import wait_until


def test_bcc_to_the_secret_address_attaches_the_mail_to_every_recipient(smtp_home):
    seed(smtp_home, "contact", "ann@acme.example")
    raw = make_mail(
        sender=f"Me <{ME}>",
        to="Ann Lee <ann@acme.example>",
        cc=["Dan Berg <dan@newco.example>", "Pat <pat@example.com>"],
        subject="Our offer",
        message_id="<offer-1@example.com>",
    )
    with running(smtp_home), client(smtp_home) as s:
        refused = s.sendmail(ME, [INTAKE], raw)
        assert refused == {}
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    crm = smtp_home.dump()
    (mail,) = emails_by_subject(crm, "Our offer")
    assert mail["direction"] == "outbound"
    ann = next(c for c in crm["contacts"] if "ann@acme.example" in c["emails"])
    (dan,) = [lead for lead in crm["leads"] if "dan@newco.example" in lead["emails"]]
    assert {(link["kind"], link["id"]) for link in mail["links"]} == {("contact", ann["id"]), ("lead", dan["id"])}
    assert dan["owner"] == ME
    everyone = [a for rec in crm["leads"] + crm["contacts"] for a in rec["emails"]]
    assert ME not in everyone and INTAKE not in everyone and "pat@example.com" not in everyone  # owner, intake, colleague
    assert smtp_home.states() == {"done": 1}


def test_a_recipient_matching_two_records_waits_for_review(smtp_home):
    seed(smtp_home, "contact", "ann@acme.example", "Ann", "One")
    seed(smtp_home, "contact", "ann@acme.example", "Ann", "Two")
    raw = make_mail(sender=ME, to="ann@acme.example", subject="Which Ann?")
    with running(smtp_home), client(smtp_home) as s:
        s.sendmail(ME, [INTAKE], raw)
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    assert smtp_home.states() == {"review": 1}
    assert emails_by_subject(smtp_home.dump(), "Which Ann?") == []


def test_a_forwarded_mail_lands_on_the_original_sender(smtp_home):
    original = make_mail(
        sender="Carol Lee <carol@acme.example>", to=ME, subject="Need a quote", message_id="<orig-7@acme.example>"
    )
    fwd = EmailMessage()
    fwd["From"], fwd["To"], fwd["Subject"] = f"Me <{ME}>", INTAKE, "Fwd: Need a quote"
    fwd["Message-ID"] = "<fwd-7@example.com>"
    fwd.set_content("For the CRM.")
    fwd.add_attachment(original, maintype="message", subtype="rfc822", filename="original.eml")
    inline = make_mail(
        sender=ME,
        to=INTAKE,
        subject="Fwd: by phone",
        message_id="<fwd-8@example.com>",
        body="FYI\n\n---------- Forwarded message ---------\nFrom: Eve Stone <eve@stone.example>\n"
        "Date: Mon, 24 Nov 2026 at 10:00\nSubject: by phone\nTo: Me <me@example.com>\n\nCall me.\n",
    )
    with running(smtp_home), client(smtp_home) as s:
        s.sendmail(ME, [INTAKE], crlf(fwd.as_bytes()))
        s.sendmail(ME, [INTAKE], inline)
        assert wait_until(lambda: settled(smtp_home, 2), DEADLINE)
    crm = smtp_home.dump()
    leads = {a: lead for lead in crm["leads"] for a in lead["emails"]}
    assert set(leads) == {"carol@acme.example", "eve@stone.example"}
    assert (leads["carol@acme.example"]["first_name"], leads["carol@acme.example"]["last_name"]) == ("Carol", "Lee")
    (m1,) = emails_by_subject(crm, "Fwd: Need a quote")
    (m2,) = emails_by_subject(crm, "Fwd: by phone")
    assert m1["links"] == [{"kind": "lead", "id": leads["carol@acme.example"]["id"]}]
    assert m2["links"] == [{"kind": "lead", "id": leads["eve@stone.example"]["id"]}]


def test_unknown_intake_address_is_refused_at_rcpt(smtp_home):
    with running(smtp_home), client(smtp_home) as s:
        s.ehlo()
        assert s.mail(ME)[0] == 250
        assert s.rcpt(f"crm+{TOKEN[:-1]}X@example.com")[0] == 550
        assert s.rcpt("me@example.com")[0] == 550
        assert s.rcpt(f"crm+{TOKEN}@EXAMPLE.com")[0] == 250  # the domain compares case-insensitively
        s.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused) as got:
            s.sendmail(ME, ["sales@example.com"], make_mail(sender=ME))
        assert got.value.recipients["sales@example.com"][0] == 550
    assert smtp_home.states() == {} and spooled_files(smtp_home) == []


def test_a_sender_that_is_not_the_user_is_refused_and_nothing_is_stored(smtp_home, caplog):
    raw = make_mail(sender="Mallory <mallory@evil.example>", to="ann@acme.example", subject="spoof", body="SECRET-BODY-TEXT")
    with running(smtp_home), client(smtp_home) as s:
        with pytest.raises(smtplib.SMTPDataError) as got:
            s.sendmail("mallory@evil.example", [INTAKE], raw)
        assert got.value.smtp_code == 550 and b"Sender not allowed" in got.value.smtp_error
        # the header From alone is enough (the user's server may rewrite the envelope), and an alias works
        assert (
            s.sendmail(
                "bounces+srs=x@relay.example",
                [INTAKE],
                make_mail(sender="m.e@example.com", to="ann@acme.example", subject="alias"),
            )
            == {}
        )
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    assert smtp_home.states() == {"done": 1} and len(spooled_files(smtp_home)) <= 1
    assert emails_by_subject(smtp_home.dump(), "spoof") == []
    refusal = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusal and "mallory@evil.example" in refusal[0]
    assert all("SECRET-BODY-TEXT" not in r.getMessage() and TOKEN not in r.getMessage() for r in caplog.records)


def test_over_max_size_is_refused_with_552(smtp_home):
    big = make_mail(sender=ME, to="ann@acme.example", body=("x" * 70 + "\n") * 16000)
    with running(smtp_home), client(smtp_home) as s:
        s.ehlo()
        assert s.esmtp_features["size"] == str(1024 * 1024)
        with pytest.raises(smtplib.SMTPSenderRefused) as got:  # smtplib declares SIZE=: refused at MAIL
            s.sendmail(ME, [INTAKE], big)
        assert got.value.smtp_code == 552
        s.rset()
        assert s.mail(ME)[0] == 250 and s.rcpt(INTAKE)[0] == 250  # no SIZE declared: refused after DATA
        assert s.data(big)[0] == 552
    assert smtp_home.states() == {} and spooled_files(smtp_home) == []


def test_auth_is_offered_only_after_starttls(smtp_home, cert):
    cert_path, key_path = cert
    set_source(
        smtp_home,
        tls_cert=str(cert_path),
        tls_key=str(key_path),
        auth="required",
        users=[
            {"address": ME, "token": TOKEN, "password": "pw-of-me"},
            {"address": "pat@example.com", "token": "patsTokenABCDEFGHIJ", "password": "pw-of-pat"},
        ],
    )
    tls = ssl.create_default_context(cafile=str(cert_path))
    with running(smtp_home), client(smtp_home) as s:
        s.ehlo()
        assert s.has_extn("starttls") and not s.has_extn("auth")
        assert s.mail(ME)[0] == 530  # auth required
        s.rset()
        s.starttls(context=tls)
        s.ehlo()
        assert not s.has_extn("starttls")
        assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(ME, "wrong")
        s.login(ME, "pw-of-me")
        assert s.mail(ME)[0] == 250
        assert s.rcpt("crm+patsTokenABCDEFGHIJ@example.com")[0] == 550  # another user's intake
        assert s.rcpt(INTAKE)[0] == 250
        assert s.data(make_mail(sender=ME, to="ann@acme.example", subject="over TLS"))[0] == 250
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    assert len(emails_by_subject(smtp_home.dump(), "over TLS")) == 1


def test_swaks_as_an_independent_client(smtp_home, tmp_path):
    mail = tmp_path / "mail.eml"
    mail.write_bytes(make_mail(sender=f"Me <{ME}>", to="Zoe Park <zoe@park.example>", subject="via swaks"))
    with running(smtp_home):
        ok = subprocess.run(
            [
                "swaks",
                "--server",
                f"127.0.0.1:{smtp_home.port}",
                "--from",
                ME,
                "--to",
                INTAKE,
                "--data",
                str(mail),
                "--helo",
                "client.test",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "<** " not in ok.stdout and "250 2.0.0 OK: queued as" in ok.stdout
        bad = subprocess.run(
            [
                "swaks",
                "--server",
                f"127.0.0.1:{smtp_home.port}",
                "--from",
                ME,
                "--to",
                "crm+guess@example.com",
                "--data",
                str(mail),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0 and "550 5.1.1" in bad.stdout
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    crm = smtp_home.dump()
    (zoe,) = [lead for lead in crm["leads"] if "zoe@park.example" in lead["emails"]]
    (m,) = emails_by_subject(crm, "via swaks")
    assert m["links"] == [{"kind": "lead", "id": zoe["id"]}]
