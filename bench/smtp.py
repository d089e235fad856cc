"""SMTP intake throughput: a bare aiosmtpd handler vs the gateway's durable BCC intake.

    .venv/bin/python bench/smtp.py                 # 2000 small messages, 4 client threads
    .venv/bin/python bench/smtp.py --count 500 --json
    .venv/bin/python bench/smtp.py --with-workers  # pipeline workers process meanwhile

In one run, with the same smtplib clients (4 threads, one connection each, `sendmail` in a
loop, ~1 KB messages):

(a) bare: an aiosmtpd Controller whose handler discards the message and answers 250;
(b) gateway: the gateway's SMTP intake (`gateway.mailboxes.smtp.source`) of a fresh gateway home
    (embedded SQLite ledger, spool in a temporary folder): every 250 comes only after the
    raw bytes are fsynced in the spool and the ledger row exists. By default no pipeline
    worker runs, so this measures the intake alone; `--with-workers` starts them too (they
    share the CPU with the intake, as in production).

Prints msgs/s for both and the ratio b/a (target >= 0.4). Nothing is asserted on timings;
the exit code is 1 only when a message was refused or the ledger does not hold every one.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_RATIO = 0.4
TOKEN = "benchToken0123456789abcdef"
USER = "me@example.com"
INTAKE = f"crm+{TOKEN}@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(i: int) -> bytes:
    body = f"Hello number {i}.\r\n" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n" * 12
    return (
        f"From: Me <{USER}>\r\nTo: Customer {i % 50} <c{i % 50}@customer{i % 7}.example>\r\n"
        f"Subject: Offer {i}\r\nDate: Fri, 20 Nov 2026 09:00:00 +0100\r\n"
        f"Message-ID: <bench-{i}-{time.time_ns()}@example.com>\r\n\r\n{body}"
    ).encode()


def blast(port: int, count: int, threads: int) -> tuple[float, int]:
    """Send `count` messages from `threads` clients; return (seconds, messages refused)."""
    per = [count // threads + (1 if t < count % threads else 0) for t in range(threads)]
    refused = [0] * threads
    ready = threading.Barrier(threads + 1)

    def client(t: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo()
            ready.wait()
            for i in range(per[t]):
                try:
                    s.sendmail(USER, [INTAKE], message(t * 1_000_000 + i))
                except smtplib.SMTPException:
                    refused[t] += 1
                    s.rset()

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - started, sum(refused)


class Discard:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def bare(count: int, threads: int) -> tuple[float, int]:
    from aiosmtpd.controller import Controller

    port = free_port()
    ctl = Controller(Discard(), hostname="127.0.0.1", port=port, data_size_limit=25 * 1024**2)
    ctl.start()
    try:
        return blast(port, count, threads)
    finally:
        ctl.stop()


def gateway(count: int, threads: int, with_workers: bool, root: Path) -> tuple[float, int, int]:
    import shutil

    import yaml

    from gateway.config import load_config
    from gateway.runtime.gateway import Gateway

    port = free_port()
    shutil.copytree(REPO / "rules", root / "rules")
    cfg = {
        "ledger": {"url": "sqlite:///var/gateway.db"},
        "crm": {"backend": "sql", "url": "sqlite:///var/crm.db"},
        "rules": ["rules/*.yaml"],
        "workers": 2,
        "internal_domains": ["example.com"],
        "sources": [
            {
                "name": "bcc",
                "type": "smtp",
                "listen": f"127.0.0.1:{port}",
                "hostname": "bench.test",
                "users": [{"address": USER, "token": TOKEN}],
                "rate_limit": None,
            }
        ],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    gw = Gateway(load_config(root / "config.yaml"))
    (intake,) = gw.sources
    if with_workers:
        gw.start_workers()
    intake.start()
    try:
        seconds, refused = blast(port, count, threads)
    finally:
        intake.close()
        if with_workers:
            gw.stop_workers()
    with gw.ledger.engine.connect() as c:
        stored = c.exec_driver_sql("select count(*) from locations where source = 'bcc'").scalar() or 0
    gw.close()
    return seconds, refused, int(stored)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--with-workers", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    bare_s, bare_refused = bare(args.count, args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as tmp:
        gw_s, gw_refused, stored = gateway(args.count, args.threads, args.with_workers, Path(tmp))
    result = {
        "messages": args.count,
        "threads": args.threads,
        "with_workers": args.with_workers,
        "bare_msgs_per_s": round(args.count / bare_s, 1),
        "gateway_msgs_per_s": round(args.count / gw_s, 1),
        "ratio": round(bare_s / gw_s, 3),
        "target_ratio": TARGET_RATIO,
        "refused": {"bare": bare_refused, "gateway": gw_refused},
        "ledger_rows": stored,
    }
    if not args.json:
        print(
            f"messages           {args.count} from {args.threads} client threads"
            f"{' (pipeline workers running)' if args.with_workers else ''}"
        )
        print(f"bare aiosmtpd      {result['bare_msgs_per_s']:>9} msgs/s (discards)")
        print(f"gateway intake     {result['gateway_msgs_per_s']:>9} msgs/s (spool fsync + ledger row before 250)")
        print(f"ratio              {result['ratio']:>9} (target >= {TARGET_RATIO})")
    print(json.dumps(result))
    ok = bare_refused == 0 and gw_refused == 0 and stored == args.count
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
