"""`reconcile` on a Maildir: a file whose ledger rows were deleted, a file delivered while the
gateway was down, a message left retrying, an email stored twice in the CRM; `--fix`
brings back what the pipeline can, leaves the duplicate to a person (exit 1 while it is
there); the last run's counts reach /metrics."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mail import make_mail


def _sql(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> list[Any]:
    db = sqlite3.connect(path)
    rows: list[Any] = []
    with db:
        for sql, args in statements:
            rows += db.execute(sql, args).fetchall()
    db.close()
    return rows


def _ledger(home: Any, *statements: tuple[str, tuple[Any, ...]]) -> list[Any]:
    return _sql(home.root / "var" / "gateway.db", *statements)


def _forget_rows(home: Any, message_id: str) -> None:
    ((pk,),) = _ledger(home, ("SELECT id FROM messages WHERE message_id = ?", (message_id,)))
    _ledger(
        home,
        *[(f"DELETE FROM {t} WHERE message_pk = ?", (pk,)) for t in ("journal", "events", "message_addresses", "locations")],
        ("DELETE FROM messages WHERE id = ?", (pk,)),
    )


def _mid(raw: bytes) -> str:
    return next(line.split(":", 1)[1].strip() for line in raw.decode().splitlines() if line.lower().startswith("message-id:"))


def _kinds(doc: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for folder in doc["folders"]:
        for kind, found in folder["findings"].items():
            out.setdefault(kind, []).extend(f["message_id"] or f["key"] for f in found)
    return out


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")  # its own deprecation notice
def test_reconcile_maildir_fix_and_metrics(home: Any) -> None:
    raws = [make_mail(sender=f"M {i} <m{i}@maildir{i}.example>", subject=f"maildir {i}") for i in range(4)]
    paths = [home.drop("VLeads", raw) for raw in raws]
    home.run_once()
    assert home.cli("reconcile").returncode == 0

    _forget_rows(home, _mid(raws[0]))
    late = home.drop("VLeads", make_mail(sender="Late <late@down.example>", subject="while down"))
    _ledger(
        home,
        (
            "UPDATE messages SET state = 'retrying', next_attempt_at = '2999-01-01 00:00:00' WHERE message_id = ?",
            (_mid(raws[1]),),
        ),
    )
    ((eid, date),) = _sql(home.root / "var" / "crm.db", ("SELECT id, date FROM emails WHERE message_id = ?", (_mid(raws[2]),)))
    _sql(
        home.root / "var" / "crm.db",
        (
            "INSERT INTO emails (message_id, content_hash, subject, from_address, from_name, to_addresses, cc_addresses, "
            'in_reply_to, "references", date, date_offset_minutes, direction, text, html, raw_size, owner, created_at) '
            "VALUES (?, 'imported-by-hand', 'copy', '', '', '[]', '[]', '[]', '[]', ?, 0, 'inbound', '', '', 0, '', ?)",
            (_mid(raws[2]), date, date),
        ),
    )

    found = home.cli("reconcile", "--source", "local", "--folder", "VLeads", "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    doc = json.loads(found.stdout)
    assert [f["folder"] for f in doc["folders"]] == ["VLeads"]
    kinds = _kinds(doc)
    assert sorted(kinds["unknown"]) == sorted([paths[0].name.split(":")[0], late.name.split(":")[0]])
    assert kinds["not_done"] == [_mid(raws[1])]
    assert kinds["duplicate_in_crm"] == [_mid(raws[2])]
    assert kinds["missing_in_crm"] == [] and kinds["untagged"] == []
    assert "2 CRM emails" in doc["folders"][0]["findings"]["duplicate_in_crm"][0]["detail"]

    fixed = home.cli("reconcile", "--fix", "--json")
    assert fixed.returncode == 1  # the duplicate is a person's call: still there
    after = json.loads(fixed.stdout)
    assert after["fixed"] == 3
    assert {k: v for k, v in after["counts"].items() if v} == {"duplicate_in_crm": 1}
    assert home.states() == {"done": 5}
    emails = sorted(e["message_id"] for e in home.dump()["emails"])
    assert emails == sorted([*map(_mid, raws), _mid(raws[2]), _mid(late.read_bytes())])  # only the hand-made copy twice

    again = home.cli("reconcile", "--fix")
    assert again.returncode == 1 and "fixed:" not in again.stdout
    assert "in the CRM twice (duplicate_in_crm): 1" in again.stdout

    from starlette.testclient import TestClient

    from gateway.web.app import make_app

    with home.gateway() as gw:
        metrics = TestClient(make_app(gw), base_url="http://127.0.0.1:8025").get("/metrics").text
    assert 'crm_gateway_reconcile_findings{kind="duplicate_in_crm"} 1.0' in metrics
    assert 'crm_gateway_reconcile_findings{kind="unknown"} 0.0' in metrics
    assert "crm_gateway_reconcile_age_seconds " in metrics

    _sql(home.root / "var" / "crm.db", ("DELETE FROM emails WHERE content_hash = 'imported-by-hand'", ()))
    assert eid and home.cli("reconcile").returncode == 0


def test_a_source_that_cannot_list_its_folders_is_said_not_supported(home: Any) -> None:
    """The SMTP intake (mail reaches it, it has no folder to list) beside the Maildir one."""
    import yaml

    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["sources"].append(
        {
            "name": "bcc",
            "type": "smtp",
            "listen": "127.0.0.1:9",  # never opened: reconcile starts no listener
            "hostname": "gw.test",
            "users": [{"address": "me@example.com", "token": "s3cretToken0123456789", "crm_user": "me@example.com"}],
        }
    )
    home.config_path.write_text(yaml.safe_dump(cfg))
    home.drop("VLeads", make_mail(sender="Ann <ann@unsupported.example>"))
    text = home.cli("reconcile")
    assert text.returncode == 1  # the Maildir's new file is unknown to the ledger
    assert "bcc: not supported by this source yet" in text.stdout
    doc = json.loads(home.cli("reconcile", "--json").stdout)
    (bcc,) = [f for f in doc["folders"] if f["source"] == "bcc"]
    assert bcc["supported"] is False and bcc["findings"]["unknown"] == []
    assert doc["counts"]["unknown"] == 1
    only = home.cli("reconcile", "--source", "bcc")
    assert only.returncode == 0 and "not supported by this source yet" in only.stdout
    assert home.cli("reconcile", "--source", "nosuch").returncode == 1
    later = home.cli("reconcile", "--since", "2999-01-01", "--json")  # nothing arrived since then
    assert later.returncode == 0 and json.loads(later.stdout)["counts"]["unknown"] == 0


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux `script` is needed to give the CLI a terminal")
def test_a_long_folder_shows_a_progress_bar_on_a_terminal(home: Any) -> None:
    for i in range(1000):
        home.drop("VContacts", f"From: p{i}@bar.example\r\nSubject: {i}\r\n\r\nbody\r\n".encode())
    cmd = f"{sys.executable} -m gateway reconcile --folder VContacts -c {home.config_path}"
    res = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        cwd=home.root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    assert res.returncode == 1, res.stdout  # 1,000 files the ledger never saw
    assert "local/VContacts" in res.stdout and "100%" in res.stdout
    assert "(unknown): 1000" in res.stdout
    plain = home.cli("reconcile", "--folder", "VContacts")
    assert "100%" not in plain.stdout + plain.stderr  # no terminal: no bar


def _delete_crm_email(home: Any, message_id: str) -> None:
    """A person deletes a stored mail from the embedded CRM with sqlite3."""
    crm = home.root / "var" / "crm.db"
    ((eid,),) = _sql(crm, ("SELECT id FROM emails WHERE message_id = ?", (message_id,)))
    _sql(
        crm,
        ("DELETE FROM email_links WHERE email_id = ?", (eid,)),
        ("DELETE FROM email_attachments WHERE email_id = ?", (eid,)),
        ("DELETE FROM emails WHERE id = ?", (eid,)),
    )


def test_a_mail_missing_in_the_crm_whose_file_is_gone_is_reported_not_reopened(home: Any) -> None:
    kept, gone = (make_mail(sender=f"K {i} <k{i}@keep{i}.example>", subject=f"keep {i}") for i in range(2))
    home.drop("VLeads", kept)
    path = home.drop("VLeads", gone)
    assert home.run_once() == {"done": 2}
    _delete_crm_email(home, _mid(kept))
    _delete_crm_email(home, _mid(gone))
    path.unlink()  # the folder no longer holds it: its bytes are nowhere the gateway can read

    fixed = home.cli("reconcile", "--fix", "--json")
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr  # one could not be fixed: said, not hidden
    doc = json.loads(fixed.stdout)
    assert doc["fixed"] == 1
    (left,) = doc["folders"][0]["findings"]["missing_in_crm"]
    assert left["message_id"] == _mid(gone) and "cannot be stored again" in left["detail"]
    assert home.states() == {"done": 2}  # not reopened into a quarantine
    assert sorted(e["message_id"] for e in home.dump()["emails"]) == [_mid(kept)]


def test_a_second_fix_waits_for_the_first_and_finds_nothing_left(home: Any) -> None:
    """Two `reconcile --fix` over one ledger (here: a fix holding the lock in this process, the
    CLI in another) run one after the other: the second says it waits, then fixes what is there
    once; the mail delivered while the gateway was down reaches the CRM once."""
    home.drop("VLeads", make_mail(sender="Down <down@while.example>", subject="delivered while down"))
    err_path = home.root / "fix.err"
    with home.gateway() as gw, gw.pipeline.task_lock("reconcile-fix").held():
        with err_path.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "reconcile", "--fix", "--json", "-c", str(home.config_path)],
                cwd=home.root,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        deadline = time.monotonic() + 120
        while "waiting for it to end" not in err_path.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "another reconcile --fix is running on this ledger" in err_path.read_text()
        assert proc.poll() is None  # it waits while the lock is held
        assert home.dump()["emails"] == []
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, err_path.read_text()
    doc = json.loads(out)
    assert not any(_kinds(doc).values())
    assert [f["kind"] for folder in doc["folders"] for f in folder["fixed"]] == ["unknown"]
    emails = home.dump()["emails"]
    assert [e["subject"] for e in emails] == ["delivered while down"]
    again = home.cli("reconcile", "--fix", "--json")
    assert again.returncode == 0 and "waiting" not in again.stderr
    assert not [f for folder in json.loads(again.stdout)["folders"] for f in folder["fixed"]]
    assert len(home.dump()["emails"]) == 1
