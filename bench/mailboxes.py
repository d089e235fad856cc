"""Many mailboxes on one gateway: N users of a private Dovecot, FOLDERS watched folders each,
all through one `imap` entry and a master user (`mailboxes:`).

Measured, in one run, with the gateway in this process:
- start: seconds from `run` until every mailbox's every folder is watched (in IDLE);
- threads, RSS (MB), and CPU at idle (% of one core over `--idle` seconds with no mail);
- APPEND→keyword: a mail APPENDed to a random mailbox's VLeads until its keyword is there
  (read by FETCH FLAGS every 10 ms), p50 and p99 over `--samples` mails;
- Dovecot's own IDLE floor, the same APPENDs seen by a plain IDLE client on that folder
  (APPEND→EXISTS), and the ratios gateway / floor.

The private Dovecot is tuned as an admin tunes one for thousands of connections
(tests/mailboxes/imap/dovecot.py, MANY_LIMITS):
- `service imap { process_limit }` and `default_process_limit` 2,000–5,000: Dovecot runs one
  `imap` process per connection (default limit 100), so each watched folder costs one;
- `service imap-login { service_count = 0; client_limit = 2000 }`: a few login processes
  serve all clients ("high-performance mode") instead of one process per login;
- `default_client_limit` 8,000 and `service auth { client_limit }`: auth and anvil see every
  login process and connection;
- `mail_max_userip_connections` 50 (default 10): folders + write-back of one user from one IP;
- inotify: each idling `imap` process takes an inotify instance, and the kernel allows 128 per
  user (`fs.inotify.max_user_instances`); beyond them Dovecot notices new mail only every
  `mailbox_idle_check_interval` (default 30 s). A real server sets the sysctl to at least the
  number of IDLE connections (and `max_user_watches` to a few per folder); this bench cannot
  change the kernel's settings, so it sets `mailbox_idle_check_interval = 1 secs`, which is
  the floor its IDLE client measures too.
The gateway raises its own open-files limit to the hard limit (one socket per folder).

    .venv/bin/python bench/mailboxes.py 100 [--folders 4] [--samples 50] [--idle 20] [--notify] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.mailboxes.imap.dovecot import Dovecot, available  # noqa: E402

FOLDERS = ["VLeads", "VContacts", "VAccounts", "CRM sync"]
MASTER = ("admin", "masterpw")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))], 1) if xs else float("nan")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def make_home(root: Path, d: Dovecot, users: list[str], folders: list[str], notify: bool) -> Any:
    from tests.fixtures import Home

    root.mkdir(parents=True, exist_ok=True)
    (root / "mailboxes.txt").write_text("\n".join(users) + "\n")
    src = {
        "name": "mail",
        "type": "imap",
        "host": d.host,
        "port": d.port,
        "security": "none",
        "master_user": MASTER[0],
        "password": MASTER[1],
        "mailboxes_file": str(root / "mailboxes.txt"),
        "folders": folders,
        "create_folders": True,
        "max_idle": len(folders),
        "max_connections": 5000,
        "notify": notify,
    }
    return Home(root, extra={"sources": [src]})


def watched(gw: Any, users: list[str]) -> int:
    """Folders in IDLE now (with NOTIFY a connection watches all of its mailbox's folders)."""
    boxes = gw.sources[0].boxes
    return sum(
        len(w.states) for u in users if u in boxes for w in boxes[u].watches if w.state.value == "watching" and w.idle and w.slot
    )


def latency(d: Dovecot, users: list[str], samples: int) -> tuple[list[float], list[float]]:
    """APPEND→keyword (the gateway) and APPEND→EXISTS (a plain IDLE client), in ms."""
    from imapclient import IMAPClient
    from tests.mail import make_mail

    rng = random.Random(14)
    gw_ms: list[float] = []
    floor_ms: list[float] = []
    for i in range(samples):
        user = rng.choice(users)
        login = f"{user}*{MASTER[0]}"
        idler = IMAPClient(d.host, d.port, ssl=False, timeout=30)
        idler.login(login, MASTER[1])
        idler.select_folder("VLeads", readonly=True)
        idler.idle()
        seen: list[float] = []

        def watch(idler: IMAPClient = idler, seen: list[float] = seen) -> None:
            end = time.monotonic() + 30
            while not seen and time.monotonic() < end:
                for r in idler.idle_check(timeout=0.2):
                    if len(r) >= 2 and r[1] == b"EXISTS":
                        seen.append(time.perf_counter())

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        raw = make_mail(sender=f"B{i} <b{i}@bench{i}.example>", subject=f"Bench {i}")
        with IMAPClient(d.host, d.port, ssl=False, timeout=30) as c:
            c.login(login, MASTER[1])
            t0 = time.perf_counter()
            resp = c.append("VLeads", raw)
            uid = int(resp.split(b"]")[0].split()[-1])
            c.select_folder("VLeads", readonly=True)
            end = time.monotonic() + 60
            while time.monotonic() < end:
                flags = c.fetch([uid], ["FLAGS"]).get(uid, {}).get(b"FLAGS", ())
                if b"CRM_sync" in flags:
                    gw_ms.append((time.perf_counter() - t0) * 1000)
                    break
                time.sleep(0.01)
        t.join(31)
        if seen:
            floor_ms.append((seen[0] - t0) * 1000)
        idler.idle_done()
        idler.logout()
    return gw_ms, floor_ms


def run(n: int, folders: int, samples: int, idle_s: float, notify: bool = False) -> dict[str, Any]:
    users = [f"u{i:04d}" for i in range(n)]
    names = FOLDERS[:folders]
    d = Dovecot({u: "pw" for u in users}, master=MASTER, many=True)
    work = Path(tempfile.mkdtemp(prefix="bench-mailboxes-"))
    try:
        home = make_home(work / "home", d, users, names, notify)
        gw = home.gateway()
        stop = threading.Event()
        threads_before = threading.active_count()
        t0 = time.perf_counter()
        runner = threading.Thread(target=gw.run, args=(stop,), name="gateway", daemon=True)
        runner.start()
        want = n * folders
        end = time.monotonic() + 1800
        while watched(gw, users) < want and time.monotonic() < end:
            time.sleep(0.2)
        start_s = time.perf_counter() - t0
        got = watched(gw, users)
        time.sleep(3)  # the first scans' tail
        c0, w0 = cpu_seconds(), time.perf_counter()
        time.sleep(idle_s)
        idle_cpu = (cpu_seconds() - c0) / (time.perf_counter() - w0) * 100
        threads = threading.active_count()
        rss = rss_mb()
        conns = sum(len(b.watches) for b in gw.sources[0].boxes.values())
        gw_ms, floor_ms = latency(d, users, samples)
        stop.set()
        runner.join(60)
        gw.close()
        out = {
            "mailboxes": n,
            "folders_each": folders,
            "notify": notify,
            "connections_watching": conns,
            "watched": f"{got} of {want}",
            "start_until_all_watched_s": round(start_s, 1),
            "threads": threads,
            "threads_before_start": threads_before,
            "rss_mb": rss,
            "cpu_idle_percent": round(idle_cpu, 2),
            "append_to_keyword_ms": {"p50": pct(gw_ms, 50), "p99": pct(gw_ms, 99), "measured": len(gw_ms)},
            "dovecot_idle_floor_ms": {"p50": pct(floor_ms, 50), "p99": pct(floor_ms, 99), "measured": len(floor_ms)},
            "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }
        if gw_ms and floor_ms:
            out["ratio_p50"] = round(pct(gw_ms, 50) / max(pct(floor_ms, 50), 1.0), 2)
            out["ratio_p99"] = round(pct(gw_ms, 99) / max(pct(floor_ms, 99), 1.0), 2)
            out["p99_over_floor_ms"] = round(pct(gw_ms, 99) - pct(floor_ms, 99), 1)
        return out
    finally:
        d.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mailboxes", type=int, help="how many mailboxes (users), e.g. 100 or 1000")
    ap.add_argument("--folders", type=int, default=4, choices=range(1, 5), help="watched folders each (1-4)")
    ap.add_argument("--samples", type=int, default=50, help="mails APPENDed for the latency")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured")
    ap.add_argument("--notify", action="store_true", help="notify: true (one connection per mailbox, RFC 5465)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not available():
        print("dovecot is not installed (Debian package dovecot-imapd)", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.WARNING)
    out = run(args.mailboxes, args.folders, args.samples, args.idle, args.notify)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:28} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
