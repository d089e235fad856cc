"""Who may use the intake beyond the secret address: DKIM (dkimpy, a real signature checked
against a key the test serves as DNS), a trusted Authentication-Results, the per-IP rate limit."""

from __future__ import annotations

import base64
import smtplib

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.mailboxes.smtp.fixtures import DEADLINE, INTAKE, ME, client, emails_by_subject, make_mail, running, set_source, settled
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def dkim_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_require_dkim_accepts_an_aligned_signature_and_refuses_the_rest(smtp_home, dkim_key):
    private, record = dkim_key
    set_source(smtp_home, require_pass=["dkim"])
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        looked_up.append(name)
        return record if name == b"sel._domainkey.example.com." else None

    def signed(subject: str, domain: str = "example.com") -> bytes:
        raw = make_mail(sender=ME, to="Ann Lee <ann@acme.example>", subject=subject)
        return dkim.sign(raw, b"sel", domain.encode(), private, include_headers=[b"from", b"to", b"subject"]) + raw

    with running(smtp_home) as gw:
        gw.sources[0].verifier.dkim_dnsfunc = dns
        with client(smtp_home) as s:
            assert s.sendmail(ME, [INTAKE], signed("signed")) == {}
            for raw in (
                make_mail(sender=ME, to="ann@acme.example", subject="unsigned"),
                signed("other domain", "evil.example"),
                signed("tampered").replace(b"Subject: tampered", b"Subject: tampered!"),
            ):
                with pytest.raises(smtplib.SMTPDataError) as got:
                    s.sendmail(ME, [INTAKE], raw)
                assert got.value.smtp_code == 550 and b"DKIM" in got.value.smtp_error
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    assert b"sel._domainkey.example.com." in looked_up
    assert smtp_home.states() == {"done": 1}
    assert [e["subject"] for e in smtp_home.dump()["emails"]] == ["signed"]


def test_trusted_authentication_results_are_read_only_from_the_configured_authserv_id(smtp_home):
    set_source(smtp_home, require_pass=["dkim", "spf"], trusted_authserv_id="mx.example.com")
    good = {"Authentication-Results": "mx.example.com; spf=pass smtp.mailfrom=me@example.com"}
    forged = {"Authentication-Results": "attacker.example; dkim=pass header.d=example.com"}
    with running(smtp_home), client(smtp_home) as s:
        assert s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="ann@acme.example", subject="ok", headers=good)) == {}
        with pytest.raises(smtplib.SMTPDataError) as got:
            s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="ann@acme.example", subject="forged", headers=forged))
        assert got.value.smtp_code == 550
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    assert [e["subject"] for e in smtp_home.dump()["emails"]] == ["ok"]


def test_the_per_ip_rate_limit_slows_down_address_guessing(smtp_home):
    set_source(smtp_home, rate_limit={"per_minute": 1, "burst": 4})
    with running(smtp_home):
        with client(smtp_home) as s:
            s.ehlo()
            assert s.mail(ME)[0] == 250  # one token
            codes = [s.rcpt(f"crm+guess{i}@example.com")[0] for i in range(5)]
            assert codes[:3] == [550, 550, 550] and codes[3:] == [450, 450]
            assert s.rcpt(INTAKE)[0] == 450  # even the right one, until the bucket refills
        with pytest.raises(smtplib.SMTPConnectError) as got:
            smtplib.SMTP("127.0.0.1", smtp_home.port, timeout=30)
        assert got.value.smtp_code == 421
    assert emails_by_subject(smtp_home.dump(), "Hello") == []
