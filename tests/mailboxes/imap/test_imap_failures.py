"""IMAP source against a real Dovecot: CRM away, wrong password, missing folder, no IDLE,
connection budget, oversize mail, `move` and the `check` hook."""

from __future__ import annotations

import sqlite3

from gateway.crm.sql import SqlConnector
from tests.mail import make_mail
from tests.mailboxes.imap.dovecot import Dovecot
from tests.mailboxes.imap.fixtures import message_id_of, wait_for


def _state(home, subject: str) -> str | None:
    led = home.ledger()
    try:
        rows = [
            m
            for m in led.messages_in(
                [
                    "received",
                    "processing",
                    "crm_done",
                    "retrying",
                    "done",
                    "done_untagged",
                    "quarantined",
                    "review",
                    "ignored",
                    "skipped",
                ]
            )
            if m.subject == subject
        ]
        return rows[0].state if rows else None
    finally:
        led.close()


def test_crm_locked_message_is_not_tagged_is_retried_and_tagged_once_back(imap_home, dovecot):
    home = imap_home()
    # the embedded CRM with a short busy timeout, so a locked database fails fast (Retryable)
    home.start(connector=SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}", busy_timeout=0.2))
    home.wait_idle("VLeads")
    lock = sqlite3.connect(home.root / "var" / "crm.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another program holds the CRM database
    try:
        raw = make_mail(sender="Dee <dee@d.org>", subject="While locked")
        dovecot.append("VLeads", raw)
        wait_for(lambda: _state(home, "While locked") == "retrying", what="the message waiting for the CRM")
        assert dovecot.flags("VLeads")[message_id_of(raw)] & {"CRM_sync", "Synced", "CRM_error"} == set()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    wait_for(lambda: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), what="tagged once the CRM is back")
    home.stop()
    assert [e["subject"] for e in home.dump()["emails"]] == ["While locked"]
    assert _state(home, "While locked") == "done"
    assert "\\Seen" not in dovecot.flags("VLeads")[message_id_of(raw)]


def test_message_moved_away_before_tagging_is_done_untagged(imap_home, dovecot):
    home = imap_home()
    home.start(connector=SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}", busy_timeout=0.2))
    home.wait_idle("VLeads")
    lock = sqlite3.connect(home.root / "var" / "crm.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        raw = make_mail(sender="Eve <eve@e.org>", subject="Moved away")
        dovecot.append("VLeads", raw)
        wait_for(lambda: _state(home, "Moved away") == "retrying", what="retrying")
        dovecot.create("Archive")
        dovecot.move("VLeads", "Archive", message_id_of(raw))  # not a watched folder: the STORE finds nothing
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    wait_for(lambda: _state(home, "Moved away") == "done_untagged", what="done_untagged")
    assert [e["subject"] for e in home.dump()["emails"]] == ["Moved away"]
    assert dovecot.flags("Archive")[message_id_of(raw)] & {"CRM_sync", "Synced"} == set()


def test_wrong_password_is_a_clear_error_in_status_not_a_crash(imap_home, dovecot):
    home = imap_home(password="wrong")
    home.start()
    wait_for(lambda: "refused" in home.source_status()["last_error"], what="the login error in status")
    home.gw.write_status()
    st = home.status_json()["sources"][0]
    assert st["connected"] is False
    assert "login as alice" in st["last_error"] and "refused" in st["last_error"]
    proc = home.cli("status")
    assert "refused" in proc.stdout.replace("\n", "")
    assert home.gw.sources[0] and any(t.name == "source-mail" and t.is_alive() for t in __import__("threading").enumerate())


def test_missing_folder_is_reported_and_picked_up_when_it_appears(imap_home, dovecot):
    home = imap_home(source={"create_folders": False}, folders=["VLeads", "VContacts"])
    dovecot.create("VLeads")
    home.start()
    wait_for(lambda: "does not exist" in home.source_status()["folders"]["VContacts"]["last_error"], what="the error")
    home.gw.write_status()
    folders = {f["folder"]: f for f in home.status_json()["sources"][0]["folders"]}
    assert "VContacts" in folders["VContacts"]["last_error"] and folders["VContacts"]["connected"] is False
    lead = make_mail(sender="Fay <fay@f.org>", subject="Other folder still works")
    dovecot.append("VLeads", lead)
    wait_for(lambda: home.tagged("VLeads", message_id_of(lead), "CRM_sync"), what="VLeads working")

    contact = make_mail(sender="Gus <gus@g.org>", subject="Folder made later")
    dovecot.append("VContacts", contact)  # creates the folder, as a person would in their client
    wait_for(lambda: home.tagged("VContacts", message_id_of(contact), "CRM_sync", "Synced"), 60, "the new folder picked up")
    home.stop()
    assert [c["emails"] for c in home.dump()["contacts"]] == [["gus@g.org"]]


def test_server_without_idle_is_polled_and_status_says_so(imap_home):
    server = Dovecot(without=("IDLE",))
    try:
        home = imap_home(server=server)
        home.start()
        wait_for(lambda: home.source_status()["folders"]["VLeads"]["connected"], what="connected")
        raw = make_mail(sender="Hal <hal@h.org>", subject="Polled")
        server.append("VLeads", raw)
        wait_for(lambda: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), what="polled and tagged")
        home.gw.write_status()
        st = home.status_json()["sources"][0]
        assert st["mode"] == "poll" and {f["mode"] for f in st["folders"]} == {"poll"}
        home.stop()
    finally:
        server.close()


def test_idle_on_as_many_folders_as_allowed_poll_the_rest_unicode_and_special_use(imap_home, dovecot, tmp_path):
    dovecot.create("Gesendete Elemente")  # a localised Sent folder, found by its \Sent attribute
    home = imap_home(folders=["VLeads", "Käufe", "VAccounts", "\\Sent"], source={"max_idle": 2})
    (home.root / "rules" / "zz-kaeufe.yaml").write_text(
        "rules:\n  - name: Purchases\n    when: {folder: Käufe}\n    then:\n"
        "      - find: {who: sender, kinds: [lead, contact, account]}\n      - create: {kind: lead, who: sender}\n"
        "      - attach: {}\n      - tag: [CRM sync]\n      - stop\n",
        encoding="utf-8",
    )
    home.start()
    wait_for(lambda: home.source_status()["folders"]["VAccounts"]["connected"], what="polling connected")
    with dovecot.client() as c:
        assert "Käufe" in [name for _f, _d, name in c.list_folders()]  # created, sent as &AOQ-ufe on the wire
    raw = make_mail(sender="Ida <ida@i.org>", subject="Kauf")
    dovecot.append("Käufe", raw)
    wait_for(lambda: home.tagged("Käufe", message_id_of(raw), "CRM_sync"), what="unicode folder tagged")
    sent = make_mail(sender="Me <me@example.com>", to="Jo <jo@j.org>", subject="Sent by me")
    dovecot.append("Gesendete Elemente", sent, flags=("\\Seen",))
    wait_for(lambda: _state(home, "Sent by me"), what="the sent mail handed over")
    home.gw.write_status()
    st = home.status_json()["sources"][0]
    modes = {f["folder"]: f["mode"] for f in st["folders"]}
    assert modes == {"VLeads": "idle", "Käufe": "idle", "VAccounts": "poll", "\\Sent": "poll"}
    assert {f["folder"]: f["server_name"] for f in st["folders"]}["\\Sent"] == "Gesendete Elemente"
    proc = home.cli("status")
    assert "idle" in proc.stdout and "poll" in proc.stdout
    home.stop()


def test_oversize_mail_is_quarantined_with_the_reason_not_fetched(imap_home, dovecot):
    home = imap_home(extra={"max_message_size": "20KB"})
    home.start()
    home.wait_idle("VLeads")
    big = make_mail(sender="Kim <kim@k.org>", subject="Huge", attachments=[("big.bin", "application/octet-stream", b"x" * 60000)])
    dovecot.append("VLeads", big)
    wait_for(lambda: _state(home, "Huge") == "quarantined", what="quarantined")
    wait_for(lambda: home.tagged("VLeads", message_id_of(big), "CRM_error"), what="the error tag")
    proc = home.cli("quarantine", "list")
    assert "Huge" in proc.stdout or "size" in proc.stdout.lower()
    assert home.dump()["emails"] == []
    assert home.source_status()["folders"]["VLeads"]["oversize"] == 1


MOVE_RULE = (
    "rules:\n  - name: File it\n    when: {all: [{folder: VLeads}, {subject: {contains: filed}}]}\n    then:\n"
    "      - find: {who: sender, kinds: [lead]}\n      - create: {kind: lead, who: sender}\n"
    "      - attach: {}\n      - tag: [CRM sync]\n      - move: Filed\n      - stop\n"
)


def test_move_without_move_uses_uid_expunge_of_that_uid_only(imap_home):
    server = Dovecot(without=("MOVE",))
    try:
        home = imap_home(server=server, folders=["VLeads"])
        for f in (home.root / "rules").glob("*.yaml"):
            f.unlink()
        (home.root / "rules" / "move.yaml").write_text(MOVE_RULE)
        keep = make_mail(sender="Lu <lu@l.org>", subject="Deleted by the user, not expunged")
        server.append("VLeads", keep, flags=("\\Deleted",))
        home.start()
        wait_for(lambda: home.source_status()["folders"]["VLeads"]["connected"], what="connected")
        raw = make_mail(sender="Mo <mo@m.org>", subject="To be filed")
        server.append("VLeads", raw)
        wait_for(lambda: home.tagged("Filed", message_id_of(raw), "CRM_sync"), what="moved and tagged")
        home.stop()
        assert message_id_of(raw) not in server.flags("VLeads")
        assert "\\Deleted" in server.flags("VLeads")[message_id_of(keep)]  # the user's own deleted mail is still there
    finally:
        server.close()


def test_check_refuses_move_on_a_server_without_move_and_uidplus(imap_home, dovecot):
    from gateway.config.rulesholder import load_for
    from gateway.engine.facts import rule_facts
    from gateway.mailboxes.registry import check_source

    def check_imap(cfg):  # as `check` does: the rules' facts handed to each source's check
        facts = rule_facts(load_for(cfg), cfg.base_dir)
        return [p for src in cfg.sources for p in check_source(src, facts, f"{cfg.path}: sources: {src.name}")]

    old = Dovecot(without=("MOVE", "UIDPLUS"))
    try:
        for server, expect in ((dovecot, False), (old, True)):
            home = imap_home(server=server)
            (home.root / "rules" / "move.yaml").write_text(MOVE_RULE)
            cfg = home.config()
            problems = check_imap(cfg)
            assert bool(problems) is expect, problems
            if expect:
                assert "neither MOVE nor UIDPLUS" in problems[0] and "File it" in problems[0]
        bad = imap_home(password="wrong")
        cfg = bad.config()
        assert "refused" in " ".join(check_imap(cfg))
    finally:
        old.close()


def test_server_without_keywords_keeps_tags_in_the_ledger_and_says_so_once(imap_home, caplog):
    """As Exchange's IMAP: PERMANENTFLAGS without \\* (here Dovecot with an ACL that withholds
    the right to write flags). The mail is done, its tags are in the ledger, and the gateway
    warns once at start, not once per message."""
    import shutil
    import tempfile
    from pathlib import Path

    where = Path(tempfile.mkdtemp(prefix="dovecot-acl-"))  # readable by Dovecot's unprivileged user
    where.chmod(0o755)
    acl = where / "global-acl"
    acl.write_text("* owner lrsitekxp\n")  # every right but `w` (flags and keywords)
    acl.chmod(0o644)
    server = Dovecot(extra=f"mail_plugins = $mail_plugins acl\nplugin {{\n  acl = vfile:{acl}\n}}\n")
    try:
        server.create("VLeads")
        home = imap_home(server=server, folders=["VLeads"])
        home.start()
        home.wait_idle("VLeads")
        raws = [make_mail(sender=f"K{i} <k{i}@nokw{i}.org>", subject=f"No keywords {i}") for i in range(3)]
        for raw in raws:
            server.append("VLeads", raw)
        wait_for(lambda: home.states() == {"done": 3}, what="three mails done")
        assert home.location_tags("VLeads") == [["CRM sync", "Synced"]] * 3
        flags = server.flags("VLeads")
        assert all(f - {"\\Recent"} == set() for f in flags.values()), flags  # no keyword, no \Seen
        assert home.source_status()["keywords"] == "ledger only"
        warnings = [r for r in caplog.records if "takes no keywords" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        home.stop()
    finally:
        server.close()
        shutil.rmtree(where, ignore_errors=True)
