"""Hostile mail never stops the gateway; quarantined mail comes back with `quarantine retry`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.mail import make_mail

DATA = Path(__file__).resolve().parent.parent / "data" / "hostile"


def test_hostile_corpus_is_processed_or_quarantined_with_a_reason(home):
    files = sorted(p for p in DATA.glob("*.eml"))
    assert len(files) >= 6
    for f in files:
        home.drop("VLeads", f.read_bytes(), name=f"{f.stem}.1.host")
    home.drop("VLeads", b"", name="empty-file.1.host")
    huge = b"From: Huge <huge@x.example>\r\nX-Long: " + b"a" * 1_000_000 + b"\r\nSubject: big header\r\n\r\nbody\r\n"
    home.drop("VLeads", huge, name="huge-header.1.host")
    home.drop("VLeads", make_mail(sender="Fine Person <fine@ok.example>"), name="fine.1.host")
    summary = home.run_once()
    assert sum(summary.values()) == len(files) + 3
    assert set(summary) <= {"done", "quarantined", "skipped", "ignored", "review"}
    led = home.ledger()
    try:
        for row in led.messages_in(["quarantined"]):
            assert row.reason, row
    finally:
        led.close()
    crm = home.dump()
    assert "fine@ok.example" in [e for l in crm["leads"] for e in l["emails"]]
    for e in crm["emails"]:
        assert "<script" not in (e["html"] or "").lower()
    listed = json.loads(home.cli("quarantine", "list", "--json", check=True).stdout)["quarantined"]
    assert any("unparseable" in q["reason"] for q in listed)  # the 0-byte file


def test_quarantine_retry_brings_a_message_back_once_the_cause_is_fixed(home):
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["max_message_size"] = "2KB"
    home.config_path.write_text(yaml.safe_dump(cfg))
    home.drop(
        "VLeads", make_mail(sender="Big Ben <ben@big.example>", attachments=[("a.bin", "application/octet-stream", b"x" * 5000)])
    )
    assert home.run_once() == {"quarantined": 1}
    assert home.location_tags("VLeads") == [["CRM error"]]
    show = home.cli("quarantine", "show", "1")
    assert show.returncode == 0 and "max_message_size" in show.stdout

    cfg["max_message_size"] = "10MB"
    home.config_path.write_text(yaml.safe_dump(cfg))
    res = home.cli("quarantine", "retry", "1")
    assert res.returncode == 0, res.stderr
    assert "1: done" in res.stdout
    assert [l["emails"] for l in home.dump()["leads"]] == [["ben@big.example"]]
    assert home.location_tags("VLeads") == [["CRM sync", "Synced"]]
    assert home.states() == {"done": 1}


def test_a_rule_that_cannot_apply_quarantines_with_on_error_tags(home):
    (home.root / "rules" / "zz-strict.yaml").write_text(
        "rules:\n"
        "  - name: Strict sync\n"
        "    when: {folder: VAccounts}\n"
        "    then:\n"
        "      - find: {who: sender, kinds: [contact]}\n"
        "      - attach: {to: found, if_none: error}\n"
        "    on_error:\n"
        "      - tag: [Needs care]\n"
    )
    for f in ("folders.yaml",):
        (home.root / "rules" / f).unlink()
    home.drop("VAccounts", make_mail(sender="Zed <zed@z.example>"))
    assert home.run_once() == {"quarantined": 1}
    assert home.location_tags("VAccounts") == [["Needs care"]]
    out = home.cli("explain", "1")
    assert "quarantined" in out.stdout and "Strict sync" in out.stdout


def test_explain_tells_why_a_message_was_skipped_or_ignored(home):
    home.drop("VLeads", make_mail(sender="Bob <bob@x.org>", headers={"Auto-Submitted": "auto-replied"}, message_id="<ooo@x.org>"))
    home.drop(
        "CRM sync", make_mail(sender="Me <me@example.com>", to="colleague@example.com", message_id="<internal@example.com>")
    )
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["sources"][0]["folders"].append("Archive")
    home.config_path.write_text(yaml.safe_dump(cfg))
    for sub in ("new", "cur", "tmp"):
        (home.mail / "Archive" / sub).mkdir(parents=True, exist_ok=True)
    home.drop("Archive", make_mail(sender="Bob <bob@x.org>", message_id="<archived@x.org>"))
    home.run_once()
    skipped = home.cli("explain", "<ooo@x.org>")
    assert skipped.returncode == 0
    assert "skipped" in skipped.stdout and "auto_reply" in skipped.stdout and "Auto-Submitted" in skipped.stdout
    ignored = home.cli("explain", "<archived@x.org>")
    assert "ignored" in ignored.stdout and "no rule" in ignored.stdout
    missing = home.cli("explain", "<nope@x.org>")
    assert missing.returncode == 1 and "no message" in missing.stderr


def test_a_source_that_kept_only_the_headers_of_a_huge_mail_quarantines_it(home):
    from gateway.mailboxes.base import Found, SourceRef

    headers = b"From: Big <big@x.example>\r\nSubject: 3 GB video\r\nMessage-ID: <huge@x.example>\r\n\r\n"
    gw = home.gateway()
    try:
        gw.intake.hand_over_now(Found(SourceRef("local", "me@example.com", "VLeads", "huge-1"), headers, 3 * 1024**3))
        assert gw.run_once() == {"quarantined": 1}
        (row,) = gw.ledger.messages_in(["quarantined"])
        assert "max_message_size" in row.reason and str(3 * 1024**3) in row.reason
    finally:
        gw.close()
    assert home.dump()["emails"] == []


def _big_hostile() -> dict[str, bytes]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_hostile", DATA.parent / "make_hostile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.big_hostile()


def _run_once_with_cpu_limit(home, cpu_seconds: int):
    """`crm-gateway run --once` in a child whose CPU time is capped (RLIMIT_CPU: robust under
    load, unlike a wall-clock limit): a parser that goes quadratic gets killed, not waited for."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    return subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--once", "-c", str(home.config_path)],
        cwd=home.root,
        capture_output=True,
        text=True,
        timeout=1800,
        preexec_fn=limit,
    )


def test_quadratic_html_and_header_attacks_end_to_end(home):
    """Issues #1, #10, #11 through the gateway: every mail ends in exactly one ledger state, the
    html.parser bait is processed with its text bounded, and the good mail behind it too."""
    from gateway.message.mime_html import TEXT_MAX

    big = _big_hostile()
    names = [
        "quadratic-html-attr.eml",
        "quadratic-html-close.eml",
        "quadratic-html-pi.eml",
        "ampersand-html.eml",
        "html-10mb.eml",
        "blank-run-header.eml",
    ]
    for n in names:
        home.drop("VLeads", big[n], name=f"{Path(n).stem}.1.host")
    for n in ("crlf-headers.eml", "unsafe-filenames.eml", "nul-header-name.eml"):
        home.drop("VLeads", (DATA / n).read_bytes(), name=f"{Path(n).stem}.1.host")
    home.drop("VLeads", b"", name="zz-empty.1.host")  # unparseable: quarantined, and logged
    home.drop("VLeads", make_mail(sender="Good Mail <good@ok.example>", subject="queued behind"), name="zz-good.1.host")
    total = len(names) + 3 + 2

    res = _run_once_with_cpu_limit(home, cpu_seconds=300)  # html.parser: > 300 s for one of these alone
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if " event=message " in ln]
    assert len(lines) == total, "\n".join(lines)  # one line per message, the unparseable one too
    assert sum("result=quarantined" in ln and "unparseable" in ln for ln in lines) == 1
    assert "\x00" not in res.stderr and "level=error" not in res.stderr

    led = home.ledger()
    try:
        with led.engine.connect() as c:
            from gateway.ledger.schema import locations

            rows = c.execute(locations.select()).all()
        assert len(rows) == total and all(r.message_pk is not None for r in rows)
        states = {led.message(r.message_pk).state for r in rows}
        assert states <= {"done", "quarantined", "skipped", "ignored", "review"}
    finally:
        led.close()
    assert home.states() == {"done": total - 1, "quarantined": 1}

    emails = {e["message_id"]: e for e in home.dump()["emails"]}
    for mid in ("<qhtml-attr@acme.example>", "<qhtml-close@acme.example>", "<qhtml-pi@acme.example>"):
        assert emails[mid]["text"] == "Start."
    assert emails["<html10@acme.example>"]["text"].startswith("Report start.")
    assert 0 < len(emails["<html10@acme.example>"]["text"]) <= TEXT_MAX
    assert any(e["from"] == "good@ok.example" and e["subject"] == "queued behind" for e in emails.values())
    crlf = emails["<crlf-1@evil.example>"]
    assert crlf["subject"] == "Hello Bcc: victim@evil.example" and crlf["from"] == "eve@evil.example"
    assert [a["filename"] for a in crlf["attachments"]] == ["invoice Bcc: x.pdf"]
    files = [a["filename"] for a in emails["<names-1@acme.example>"]["attachments"]]
    assert files[:3] == ["part-2.bin", "part-3.bin", "evil.pdf"] and all(len(f.encode()) <= 255 for f in files)
    assert emails["<nulname-1@acme.example>"]["subject"] == "NUL in a header name"
