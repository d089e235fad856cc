"""Failover: from kill -9 of one gateway to the first mail of its mailboxes tagged by the other.

    .venv/bin/python bench/failover.py [--mailboxes 10] [--lease 5] [--rounds 3] [--json]

Two `crm-gateway run` processes share one PostgreSQL ledger and CRM (127.0.0.1:5432, a
schema of their own, dropped afterwards) and the same Maildir mailboxes; each watches half
of them. Each round: kill -9 the first gateway, at once drop a mail into each mailbox it
held, and time until the first of those copies is tagged (`applied` in the ledger) by the
survivor; then the killed gateway is started again and the mailboxes divided anew.

Prints each round's time against the lease time as a ratio (target: under 2). A takeover
waits for the lease to expire (at most one lease after the last renewal) and for the
survivor's next round (a third of the lease), then the mailbox is scanned and the mail
processed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.crm.sql_backends import postgres_url  # noqa: E402
from tests.mail import make_mail  # noqa: E402
from tests.runtime.fixtures import Mailboxes, SharingGateway  # noqa: E402
from tests.waiting import wait_for  # noqa: E402


def _tagged(ledger, message_ids: set[str]) -> bool:
    from gateway.ledger.schema import locations, messages

    with ledger.reader.connect() as c:
        rows = c.execute(
            locations.select()
            .with_only_columns(messages.c.message_id)
            .select_from(locations.join(messages, locations.c.message_pk == messages.c.id))
            .where(locations.c.state == "applied", messages.c.message_id.in_(list(message_ids)))
        ).all()
    return bool(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=10)
    ap.add_argument("--lease", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from gateway.ledger import Ledger

    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, postgres_url() as ledger_url, postgres_url() as crm_url:
        root = Path(tmp)
        boxes = Mailboxes(root / "mail", args.mailboxes)
        gws = [
            SharingGateway(root / name, name, ledger_url, crm_url, boxes.sources(boxes.names), lease=args.lease)
            for name in ("gw1", "gw2")
        ]
        ledger = Ledger(ledger_url)
        half = {"gw1": args.mailboxes // 2, "gw2": args.mailboxes - args.mailboxes // 2}
        try:
            for g in gws:
                g.start()
            for n in range(args.rounds):
                if not wait_for(lambda: Counter(gws[1].holders().values()) == half, timeout=30 * args.lease, step=0.5):
                    raise SystemExit(f"the mailboxes were not divided: {gws[1].holders()}")
                theirs = [b for b, h in gws[1].holders().items() if h == "gw1"]
                ids = {f"<round{n}-{b}@failover>" for b in theirs}
                gws[0].kill()
                killed = time.monotonic()
                for b in theirs:
                    boxes.drop(b, make_mail(sender=f"Failover {b} <{b}.{n}@f.example>", message_id=f"<round{n}-{b}@failover>"))
                if not wait_for(lambda: _tagged(ledger, ids), timeout=20 * args.lease):  # noqa: B023 (called at once)
                    raise SystemExit("no mail of the killed gateway's mailboxes was tagged")
                times.append(time.monotonic() - killed)
                print(f"round {n + 1}: {times[-1]:.2f} s = {times[-1] / args.lease:.2f} × lease", file=sys.stderr)
                gws[0].start()
        finally:
            for g in gws:
                g.stop()
            ledger.close()
    result = {
        "mailboxes": args.mailboxes,
        "lease_s": args.lease,
        "rounds_s": [round(t, 2) for t in times],
        "median_s": round(statistics.median(times), 2),
        "ratio_to_lease": round(statistics.median(times) / args.lease, 2),
        "worst_ratio_to_lease": round(max(times) / args.lease, 2),
        "target_ratio": 2.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"failover over {args.mailboxes} mailboxes, lease {args.lease:.1f} s: median {result['median_s']} s = "
            f"{result['ratio_to_lease']} × lease (worst {result['worst_ratio_to_lease']}; target < 2)"
        )


if __name__ == "__main__":
    main()
