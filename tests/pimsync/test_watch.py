"""`crm-gateway pimsync --watch`: a CRM change reaches the address book long before the
address-book interval (an hour here) would have run a round; SIGTERM ends the loop."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from gateway.crm.sync import ContactFields
from tests.pimsync.radicale_server import Radicale
from tests.pimsync.world import World
from tests.waiting import wait_for


def test_a_crm_change_reaches_the_book_within_seconds_and_sigterm_stops_the_watch(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    w = World(tmp_path, radicale, *users)
    log = (tmp_path / "watch.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "pimsync", "--watch", "--every", "3600", "-c", str(w.home.config_path)],
        cwd=w.home.root,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(lambda: "cards 0 created" in (tmp_path / "watch.log").read_text(), timeout=120)
        w.contacts.create_contact(ContactFields(first_name="Quick", last_name="Change"), w.owner(w.alice), "quick")
        assert wait_for(lambda: len(w.cards(w.alice)) == 1, timeout=120), (tmp_path / "watch.log").read_text()
        (card,) = [c for _, c in w.cards(w.alice).values()]
        assert card.fields.first_name == "Quick"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        w.close()


def test_a_failing_book_is_backed_off_while_the_others_keep_syncing(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    import threading

    import yaml

    from gateway.pimsync.rounds import PimSync, Results
    from gateway.pimsync.watch import watch

    w = World(tmp_path, radicale, *users)
    cfg = yaml.safe_load(w.home.config_path.read_text())
    cfg["pimsync"]["addressbooks"][1]["password"] = "wrong"  # bob's book refuses every round
    w.home.config_path.write_text(yaml.safe_dump(cfg))
    rounds: list[Results] = []
    stop = threading.Event()
    try:
        with PimSync(w.home.config()) as sync:
            t = threading.Thread(target=watch, args=(sync, stop, rounds.append), kwargs={"every": 3600, "poll": 0.5})
            t.start()
            try:
                assert wait_for(lambda: len(rounds) >= 1, timeout=120)
                w.contacts.create_contact(ContactFields(first_name="Still", last_name="Synced"), w.owner(w.alice), "still")
                assert wait_for(lambda: len(w.cards(w.alice)) == 1, timeout=120)
                stop.wait(4)
            finally:
                stop.set()
                t.join(timeout=120)
        failed = [r for r in rounds if f"{w.bob}-contacts" in r[1]]
        # before: a round as fast as the machine allows (a failing book's cursor never moves);
        # now a round waits at least `poll`, and the failing book doubles its pause each time
        assert 2 <= len(failed) <= 8, len(failed)
        assert len(rounds) < 30, len(rounds)
    finally:
        w.close()
