"""250 means durable: the spool survives kill -9, and no error inside the gateway loses mail."""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess
import sys

import pytest

from tests.mailboxes.smtp.fixtures import (
    DEADLINE,
    INTAKE,
    ME,
    client,
    emails_by_subject,
    listening,
    make_mail,
    running,
    seed,
    settled,
    spooled_files,
)
from tests.waiting import wait_until


def test_the_spool_survives_kill_9_right_after_250_and_the_mail_is_processed_once(smtp_home):
    seed(smtp_home, "contact", "ann@acme.example")
    crm_db = smtp_home.root / "var" / "crm.db"
    log = open(smtp_home.root / "gateway.log", "wb")  # noqa: SIM115 (closed in the finally, after the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(smtp_home.config_path)],
        cwd=smtp_home.root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    lock = sqlite3.connect(crm_db, timeout=30, isolation_level=None)
    try:
        assert wait_until(lambda: listening(smtp_home.port) or proc.poll() is not None, DEADLINE)
        assert proc.poll() is None, (smtp_home.root / "gateway.log").read_text()
        # Hold the CRM's write lock so the gateway cannot finish the mail before it is killed.
        lock.execute("BEGIN EXCLUSIVE")
        with client(smtp_home) as s:
            s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="Ann Lee <ann@acme.example>", subject="survives"))
            # 250 came back (sendmail raised nothing): now the hard way down, no cleanup at all
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
        log.close()
    assert len(spooled_files(smtp_home)) == 1
    assert "done" not in smtp_home.states()
    assert emails_by_subject(smtp_home.dump(), "survives") == []

    again = smtp_home.cli("run", "--once", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert smtp_home.states() == {"done": 1}
    crm = smtp_home.dump()
    (mail,) = emails_by_subject(crm, "survives")
    (ann,) = crm["contacts"]
    assert mail["links"] == [{"kind": "contact", "id": ann["id"]}]
    assert smtp_home.cli("run", "--once").returncode == 0  # once more: nothing new
    assert len(emails_by_subject(smtp_home.dump(), "survives")) == 1


def test_a_failure_to_spool_answers_451_and_the_resent_mail_is_kept(smtp_home):
    with running(smtp_home) as gw:
        real = gw.spool.store_many
        calls = {"n": 0}

        def flaky(raws):
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(28, "No space left on device")
            return real(raws)

        gw.spool.store_many = flaky
        raw = make_mail(sender=ME, to="Bo Kim <bo@kim.example>", subject="retry me")
        with client(smtp_home) as s:
            with pytest.raises(smtplib.SMTPDataError) as got:
                s.sendmail(ME, [INTAKE], raw)
            assert got.value.smtp_code == 451 and got.value.smtp_error.startswith(b"4.3.0")
            assert s.sendmail(ME, [INTAKE], raw) == {}  # what the sending server does next
        assert wait_until(lambda: settled(smtp_home, 1), DEADLINE)
    assert smtp_home.states() == {"done": 1}
    assert len(emails_by_subject(smtp_home.dump(), "retry me")) == 1


def test_an_unexpected_exception_in_a_hook_answers_451_not_500(smtp_home):
    with running(smtp_home) as gw:
        (source,) = gw.sources

        def broken(address: str):
            raise RuntimeError("directory exploded")

        source.directory.user_for = broken
        with client(smtp_home) as s:
            s.ehlo()
            assert s.mail(ME)[0] == 250
            code, text = s.rcpt(INTAKE)
            assert code == 451 and text.startswith(b"4.3.0")
    assert smtp_home.states() == {}


def test_an_exception_while_processing_a_spooled_mail_is_retried(smtp_home):
    with running(smtp_home) as gw:
        real = gw.crm.attach
        calls = {"n": 0}

        def flaky(*a, **kw):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("CRM connector bug")
            return real(*a, **kw)

        gw.crm.attach = flaky
        with client(smtp_home) as s:
            assert s.sendmail(ME, [INTAKE], make_mail(sender=ME, to="Cy Ng <cy@ng.example>", subject="bug")) == {}
        assert wait_until(lambda: smtp_home.states() == {"done": 1}, DEADLINE)
    assert calls["n"] >= 2
    crm = smtp_home.dump()
    assert len(emails_by_subject(crm, "bug")) == 1 and len(crm["leads"]) == 1
