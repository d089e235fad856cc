"""A budget per message (`message_budget`): a message whose handling goes over it is stopped,
quarantined with the stage in the reason, and not picked up again until `quarantine retry`;
the other mails of its batch are done. Threads and worker processes alike.

The slowness is injected through a test hook, `CRM_GATEWAY_TEST_SLOW_PARSE=MARKER:SECONDS`
(gateway/pipeline/hooks.py), which makes parsing a mail containing MARKER sleep: it stands for a
parser stuck on a hostile mail. Nothing else in the pipeline is stubbed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.mail import make_mail

MARKER = "X-Test-Slow: parse"


def _configure(home, **extra):
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg.update({"message_budget": 2, "batch": 8, **extra})
    home.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _run_once(home, slow: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CRM_GATEWAY_TEST_SLOW_PARSE"}
    if slow:
        env["CRM_GATEWAY_TEST_SLOW_PARSE"] = f"{MARKER}:600"  # far past the budget: only the watchdog ends it
    return subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--once", "-c", str(home.config_path)],
        cwd=home.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _quarantined(home) -> list[dict]:
    return json.loads(home.cli("quarantine", "list", "--json", check=True).stdout)["quarantined"]


# With `batch: 2` a worker process holds a second batch waiting behind the one in hand: given
# up on, it must hand back both.
@pytest.mark.parametrize("mode", [{"workers": 2, "processes": 1}, {"processes": 2, "batch": 2}], ids=["threads", "processes"])
def test_a_message_over_budget_is_quarantined_and_its_batch_goes_on(home, mode):
    _configure(home, **mode)
    for n in range(3):
        home.drop("VLeads", make_mail(sender=f"Fine {n} <fine{n}@ok{n}.example>"))
    home.drop("VLeads", make_mail(sender="Slow Sam <sam@slow.example>", headers={"X-Test-Slow": "parse"}))
    for n in range(3, 8):
        home.drop("VLeads", make_mail(sender=f"Fine {n} <fine{n}@ok{n}.example>"))

    res = _run_once(home, slow=True)
    assert res.returncode == 0, res.stderr
    leads = sorted(e for lead in home.dump()["leads"] for e in lead["emails"])
    assert leads == [f"fine{n}@ok{n}.example" for n in range(8)]
    assert home.states() == {"done": 8, "quarantined": 1}
    [q] = _quarantined(home)
    assert q["reason"] == "took more than 2 s to parse"
    assert "took more than 2 s to parse" in res.stderr  # logged
    assert "CRM error" in [t for tags in home.location_tags("VLeads") for t in tags]

    # A restart (still slow) does not pick it up again.
    res = _run_once(home, slow=True)
    assert res.returncode == 0, res.stderr
    assert home.states() == {"done": 8, "quarantined": 1}
    assert "sam@slow.example" not in res.stderr

    # A person retries it once the cause is gone.
    res = home.cli("quarantine", "retry", str(q["id"]))
    assert res.returncode == 0, res.stderr
    assert home.states() == {"done": 9}
    assert "sam@slow.example" in [e for lead in home.dump()["leads"] for e in lead["emails"]]


def _run_crashing(home) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRM_GATEWAY_TEST_SLOW_PARSE": f"{MARKER}:crash"}  # the process dies parsing it
    return subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--once", "-c", str(home.config_path)],
        cwd=home.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _drop_crash_batch(home) -> None:
    for n in range(2):
        home.drop("VLeads", make_mail(sender=f"Fine {n} <fine{n}@ok{n}.example>"))
    home.drop("VLeads", make_mail(sender="Crash Carl <carl@crash.example>", headers={"X-Test-Slow": "parse"}))
    for n in range(2, 4):
        home.drop("VLeads", make_mail(sender=f"Fine {n} <fine{n}@ok{n}.example>"))


def test_a_message_that_kills_every_restart_ends_quarantined(home):
    """Threads: the process dies with the mail in hand. The batch it was in is handled one
    mail at a time after the restart; the mail that kills the process is quarantined at the
    start after its third crash, and the rest are done."""
    _configure(home, workers=1, processes=1)
    _drop_crash_batch(home)
    codes = [_run_crashing(home).returncode for _ in range(3)]
    assert all(code != 0 for code in codes), codes
    res = _run_crashing(home)
    assert res.returncode == 0, res.stderr
    assert home.states() == {"done": 4, "quarantined": 1}
    [q] = _quarantined(home)
    assert q["reason"].startswith("processing crashed 3 times")
    assert "processing crashed 3 times" in res.stderr
    assert _run_crashing(home).returncode == 0  # not picked up again
    res = home.cli("quarantine", "retry", str(q["id"]))
    assert res.returncode == 0, res.stderr
    assert home.states() == {"done": 5}


def test_a_message_that_kills_its_worker_process_ends_quarantined_in_one_run(home):
    """Processes: the worker dies, is started again, and the mail it held is counted as a
    crash each time; after the third it is quarantined and the run ends."""
    _configure(home, processes=2)
    _drop_crash_batch(home)
    res = _run_crashing(home)
    assert res.returncode == 0, res.stderr
    assert home.states() == {"done": 4, "quarantined": 1}
    [q] = _quarantined(home)
    assert q["reason"].startswith("processing crashed 3 times")
    leads = sorted(e for lead in home.dump()["leads"] for e in lead["emails"])
    assert leads == [f"fine{n}@ok{n}.example" for n in range(4)]


def test_a_stop_while_a_worker_thread_is_stuck_quarantines_its_mail_and_ends(home, tmp_path):
    """SIGTERM while a worker thread is stuck on a mail: the watchdog keeps watching until the
    workers end, so the stuck one is given up on at its budget and the stop ends (it used to
    wait for that thread for ever: the watchdog was stopped first)."""
    import signal

    from tests.waiting import wait_for

    _configure(home, workers=1, processes=1)
    home.drop("VLeads", make_mail(sender="Slow Sam <sam@slow.example>", headers={"X-Test-Slow": "parse"}))
    env = {**os.environ, "CRM_GATEWAY_TEST_SLOW_PARSE": f"{MARKER}:600"}
    log = tmp_path / "run.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
            cwd=home.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        try:
            assert wait_for(lambda: "test hook: parsing this mail" in log.read_text(), 120), log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=180)  # far past the 2 s budget: a hang, not a slow stop
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("the stop waited for the stuck worker: " + log.read_text()[-2000:])
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "took more than 2 s to parse" in text
    assert home.states() == {"quarantined": 1}
