"""Never duplicate, never lose: copies in two folders or mailboxes, reruns, and kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.mail import make_mail
from tests.waiting import wait_for as _wait


def test_same_message_in_two_folders_is_stored_once_and_both_copies_are_tagged(home):
    raw = make_mail(sender="Bob Ray <bob@x.org>", subject="twice", message_id="<twice@x.org>")
    home.drop("VLeads", raw)
    home.drop("VContacts", raw)
    assert home.run_once() == {"done": 2}  # two copies, two workers at once, one message
    crm = home.dump()
    assert len(crm["leads"]) + len(crm["contacts"]) == 1
    (email,) = crm["emails"]
    assert len(email["links"]) == 1
    assert home.location_tags("VLeads") == [["CRM sync", "Synced"]]
    assert home.location_tags("VContacts") == [["CRM sync", "Synced"]]


def test_same_message_in_two_mailboxes_is_stored_once(make_home, tmp_path):
    h = make_home()
    cfg = yaml.safe_load(h.config_path.read_text())
    other = tmp_path / "other-mail"
    for sub in ("new", "cur", "tmp"):
        (other / "VLeads" / sub).mkdir(parents=True)
    cfg["sources"].append(
        {
            "name": "colleague",
            "type": "maildir",
            "path": str(other),
            "layout": "fs",
            "owner": ["pat@example.com"],
            "folders": ["VLeads"],
        }
    )
    h.config_path.write_text(yaml.safe_dump(cfg))
    raw = make_mail(sender="Bob Ray <bob@x.org>", to=["me@example.com", "pat@example.com"], message_id="<both@x.org>")
    h.drop("VLeads", raw)
    (other / "VLeads" / "new" / "1.abc.host").write_bytes(raw.replace(b"Subject:", b"Received: from mx2 by mx\r\nSubject:", 1))
    assert h.run_once() == {"done": 2}
    crm = h.dump()
    assert len(crm["leads"]) == 1 and len(crm["emails"]) == 1
    assert len(crm["emails"][0]["links"]) == 1


def test_run_once_twice_changes_nothing_the_second_time(home):
    for i in range(5):
        home.drop("VLeads", make_mail(sender=f"P{i} Q <p{i}@x{i}.example>"))
    home.run_once()
    before = home.dump()
    led = home.ledger()
    with led.engine.connect() as c:
        events_before = c.exec_driver_sql("select count(*) from events").scalar()
    assert home.run_once() == {"done": 5}
    assert home.dump() == before
    with led.engine.connect() as c:
        assert c.exec_driver_sql("select count(*) from events").scalar() == events_before
    led.close()


def test_two_new_mails_from_one_unknown_sender_at_once_make_one_lead(home):
    for i in range(6):
        home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject=f"mail {i}"))
    assert home.run_once() == {"done": 6}
    crm = home.dump()
    assert len(crm["leads"]) == 1 and len(crm["emails"]) == 6


STEPS = [
    "create:lead:bob@x.org:intent",
    "create:lead:bob@x.org:called",
    "create:lead:bob@x.org:result",
    "attach:intent",
    "attach:called",
    "attach:result",
    "crm_done",
]


def _killed_at_then_run_again(home, step: str) -> dict:
    """`run --once` killed like `kill -9` at a journal step, then run again; the CRM after it."""
    killed = home.cli("run", "--once", env={"CRM_GATEWAY_CRASH_AT": step})
    assert killed.returncode == 137, killed.stderr
    again = home.cli("run", "--once")
    assert again.returncode == 0, again.stderr
    return home.dump()


def _batch(home, n: int) -> None:
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["batch"] = n
    home.config_path.write_text(yaml.safe_dump(cfg))


@pytest.mark.parametrize("batch", [16, 1])
@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_journal_step_then_run_again(home, step, batch):
    _batch(home, batch)
    raw = make_mail(
        sender="Bob Ray <bob@x.org>",
        subject="crash",
        message_id="<crash@x.org>",
        attachments=[("a.bin", "application/octet-stream", b"\x00\x01" * 5000)],
    )
    home.drop("VLeads", raw)
    crm = _killed_at_then_run_again(home, step)
    assert len(crm["leads"]) == 1
    (email,) = crm["emails"]
    assert email["links"] == [{"kind": "lead", "id": crm["leads"][0]["id"]}]
    assert len(email["attachments"]) == 1
    assert home.states() == {"done": 1}
    assert home.location_tags("VLeads") == [["CRM sync", "Synced"]]
    doc = json.loads(home.cli("explain", "<crash@x.org>", "--json", check=True).stdout)
    assert doc["journal"]["create:lead:bob@x.org"]["created"] is True


@pytest.mark.parametrize("batch", [16, 1])
@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_journal_step_with_other_mails_in_hand_then_run_again(home, step, batch):
    """The same crash with mails of other senders around it: taken in a batch (16) they share
    its claim, intents, attach and outcome transactions, and die with it; one by one (1) the
    first is done before it. After the restart each is done once, the crashed one adopted
    from its journal."""
    _batch(home, batch)
    home.drop("VLeads", make_mail(sender="Ann Lee <ann@a.example>", subject="before", message_id="<before@a.example>"))
    home.drop(
        "VLeads",
        make_mail(
            sender="Bob Ray <bob@x.org>",
            subject="crash",
            message_id="<crash@x.org>",
            attachments=[("a.bin", "application/octet-stream", b"\x00\x01" * 5000)],
        ),
    )
    home.drop("VLeads", make_mail(sender="Cy Doe <cy@c.example>", subject="after", message_id="<after@c.example>"))
    crm = _killed_at_then_run_again(home, step)
    assert sorted(e for lead in crm["leads"] for e in lead["emails"]) == ["ann@a.example", "bob@x.org", "cy@c.example"]
    assert sorted(e["message_id"] for e in crm["emails"]) == ["<after@c.example>", "<before@a.example>", "<crash@x.org>"]
    assert all(len(e["links"]) == 1 for e in crm["emails"])
    (crashed,) = [e for e in crm["emails"] if e["message_id"] == "<crash@x.org>"]
    assert len(crashed["attachments"]) == 1
    assert home.states() == {"done": 3}
    assert home.location_tags("VLeads") == [["CRM sync", "Synced"]] * 3
    for mid in ("<before@a.example>", "<crash@x.org>", "<after@c.example>"):
        doc = json.loads(home.cli("explain", mid, "--json", check=True).stdout)
        assert [v["created"] for k, v in doc["journal"].items() if k.startswith("create:lead:")] == [True]


def _processes(home, n: int) -> None:
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["processes"] = n
    home.config_path.write_text(yaml.safe_dump(cfg))


def test_worker_processes_never_duplicate(home):
    _processes(home, 2)
    raw = make_mail(sender="Bob Ray <bob@x.org>", subject="twice", message_id="<twice-p@x.org>")
    home.drop("VLeads", raw)
    home.drop("VContacts", raw)
    for i in range(8):
        home.drop("VLeads", make_mail(sender="Cy Dee <cy@y.org>", subject=f"mail {i}"))
    res = home.cli("run", "--once")
    assert res.returncode == 0, res.stderr
    crm = home.dump()
    # whichever copy of Bob's mail claims it first decides: a lead (VLeads) or a contact (VContacts)
    people = sorted(p["emails"][0] for p in crm["leads"] + crm["contacts"])
    assert people == ["bob@x.org", "cy@y.org"]
    assert [l["emails"] for l in crm["leads"] if l["emails"] == ["cy@y.org"]] == [["cy@y.org"]]
    assert len(crm["emails"]) == 9 and all(len(e["links"]) == 1 for e in crm["emails"])
    assert home.states() == {"done": 10}
    assert home.location_tags("VContacts") == [["CRM sync", "Synced"]]


def test_a_worker_process_killed_mid_message_is_replaced_and_nothing_doubles(home, tmp_path):
    _processes(home, 2)
    home.drop(
        "VLeads",
        make_mail(
            sender="Bob Ray <bob@x.org>",
            message_id="<killed@x.org>",
            attachments=[("a.bin", "application/octet-stream", b"\x01" * 4000)],
        ),
    )
    for i in range(3):
        home.drop("VAccounts", make_mail(sender=f"Info <info@co{i}.example>"))
    env = {**os.environ, "CRM_GATEWAY_CRASH_AT": "attach:called", "CRM_GATEWAY_CRASH_ONCE": str(tmp_path / "crashed")}
    res = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--once", "-c", str(home.config_path)],
        cwd=home.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "crashed").exists() and "died" in res.stderr
    crm = home.dump()
    assert len(crm["leads"]) == 1 and len(crm["accounts"]) == 3 and len(crm["emails"]) == 4
    assert all(len(e["links"]) == 1 for e in crm["emails"])
    assert home.states() == {"done": 4}


class _Crash(BaseException):
    """Stands for the process dying at a journal step (nothing after it runs)."""


def test_first_attempt_hint_is_given_only_when_nothing_can_be_stored_yet(home):
    from gateway.crm.base import PartyData
    from gateway.crm.sql import SqlConnector

    class HintedCrm(SqlConnector):
        """The real embedded CRM, recording the hint a connector like Tryton's relies on."""

        wants_first_attempt_hint = True
        seen: list[bool] = []

        def attach(self, parents, mail, *, first_attempt=False):
            self.seen.append(first_attempt)
            return super().attach(parents, mail, first_attempt=first_attempt)

    crm = HintedCrm(f"sqlite:///{home.root / 'var' / 'crm.db'}")
    crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name="Lee", emails=("ann@acme.example",)))
    home.drop("CRM sync", make_mail(sender="Ann <ann@acme.example>", message_id="<hint@acme.example>"))
    home.drop("CRM sync", make_mail(sender="Ann <ann@acme.example>", message_id="<hint2@acme.example>"))
    gw = home.gateway(connector=crm)
    try:
        pks: list[int] = []
        gw.intake.enqueue = lambda pk, block=True: pks.append(pk)  # type: ignore[method-assign]
        gw.sources[0].scan_once()

        def crash(step):
            if step == "attach:called":
                raise _Crash()

        gw.pipeline.crash_at = crash
        with pytest.raises(_Crash):
            gw.pipeline.handle(pks[0])  # the CRM stored it, the ledger never heard back
        gw.pipeline.crash_at = None
        assert gw.pipeline.handle(pks[0]) == "done"  # the replay
        assert gw.pipeline.handle(pks[1]) == "done"  # an ordinary first attempt
        assert HintedCrm.seen == [True, False, True]
    finally:
        gw.close()
    emails = home.dump()["emails"]
    assert sorted(e["message_id"] for e in emails) == ["<hint2@acme.example>", "<hint@acme.example>"]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            out += [int(c) for c in fh.read().split()]
    return out


def _fork_servers(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        with open(f"/proc/{child}/cmdline") as fh:
            if "forkserver" in fh.read():
                out.append(child)
    return out


def _worker_pids(pid: int) -> list[int]:
    """The gateway's worker processes: forked by its fork server (spawned where there is none)."""
    out: list[int] = [w for server in _fork_servers(pid) for w in _children(server)]
    for child in _children(pid):
        with open(f"/proc/{child}/cmdline") as fh:
            if "spawn_main" in fh.read():
                out.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _serving_with_two_workers(home) -> subprocess.Popen:
    """`run` as a service runs it, with `processes: 2`, once it has processed a first mail."""
    _processes(home, 2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
        cwd=home.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    home.drop("VLeads", make_mail(sender="First One <first@a.example>"))
    _wait(lambda: len(home.dump()["leads"]) >= 1, 60)
    return proc


def _stopped(proc: subprocess.Popen) -> str:
    """SIGTERM, as a service manager stops it; what it wrote to stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err


def test_an_idle_worker_process_killed_is_replaced_and_mail_still_flows(home):
    proc = _serving_with_two_workers(home)
    try:
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # as the OOM killer would, while it waits for work
        time.sleep(1.5)
        for i in range(4):
            home.drop("VLeads", make_mail(sender=f"After {i} <after{i}@b{i}.example>"))
        _wait(lambda: len(home.dump()["leads"]) >= 5, 60)
        assert len(home.dump()["leads"]) == 5
    finally:
        err = _stopped(proc)
    assert proc.returncode == 0, err
    assert "died" in err and home.states() == {"done": 5}


def test_worker_processes_see_the_environment_of_their_start_not_of_the_fork_server(home, monkeypatch):
    """Workers are forked from a fork server that lives as long as the gateway's process; a
    `${VAR}` in the config must still be read from the environment of each pool's start."""
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["processes"] = 2
    cfg["sources"][0]["crm_user"] = "${GW_TEST_OWNER}"
    home.config_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("GW_TEST_OWNER", "first@example.com")
    home.drop("VLeads", make_mail(sender="One Ray <one@x.org>"))
    assert home.run_once() == {"done": 1}  # in this process: starts the fork server if none runs yet
    monkeypatch.setenv("GW_TEST_OWNER", "second@example.com")
    home.drop("VLeads", make_mail(sender="Two Ray <two@y.org>"))
    home.run_once()
    owners = {lead["emails"][0]: lead["owner"] for lead in home.dump()["leads"]}
    assert owners == {"one@x.org": "first@example.com", "two@y.org": "second@example.com"}


def test_run_once_with_worker_processes_and_nothing_to_do_ends_cleanly(home):
    _processes(home, 2)
    res = home.cli("run", "--once")  # stops while the workers may still be starting
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "Error" not in res.stderr, res.stderr


def test_fork_server_killed_workers_are_replaced_not_doubled_and_mail_still_flows(home):
    proc = _serving_with_two_workers(home)
    try:
        servers, old = _fork_servers(proc.pid), _worker_pids(proc.pid)
        assert len(servers) == 1 and len(old) == 2
        os.kill(servers[0], signal.SIGKILL)  # the workers' exit codes are read through it: now they look ended
        _wait(lambda: not any(_alive(p) for p in old), 30)
        assert not any(_alive(p) for p in old), "the old workers were left running beside their replacements"
        for i in range(4):
            home.drop("VLeads", make_mail(sender=f"Later {i} <later{i}@b{i}.example>"))
        _wait(lambda: len(home.dump()["leads"]) >= 5, 60)
        new = _worker_pids(proc.pid)
        assert len(new) == 2 and not set(new) & set(old)
    finally:
        err = _stopped(proc)
    assert proc.returncode == 0, err
    crm = home.dump()
    assert len(crm["leads"]) == 5 and len(crm["emails"]) == 5
    assert home.states() == {"done": 5}


def test_worker_processes_end_when_the_main_process_is_killed(home):
    """A SIGKILLed gateway (OOM killer, `kill -9`) must not leave its workers holding the
    ledger and CRM; what was in flight stays open in the ledger for the next start."""
    proc = _serving_with_two_workers(home)
    try:
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2
    finally:
        proc.kill()
        proc.wait(30)
    _wait(lambda: not any(_alive(p) for p in workers), 30)
    proc.stderr.close()
    assert not any(_alive(p) for p in workers), "workers outlived the killed gateway"
    home.drop("VLeads", make_mail(sender="After Kill <after@b.example>"))
    assert home.run_once() == {"done": 2}  # the next start carries on
    assert len(home.dump()["leads"]) == 2
