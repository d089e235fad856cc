"""Contact sync benchmark against a private Radicale (started here, unprivileged, 127.0.0.1).

N contacts are imported into the embedded CRM by plain SQL (one transaction, as a CSV import
would), then, timed:
(a) the baseline: N bare PUTs of the same cards into another empty address book, one request
    each, as any client pays to fill a book;
(b) the first sync round into an empty address book (feed, cards rendered and PUT with
    If-None-Match, links and snapshots in the ledger);
(c) CHANGES edits on each side (titles by plain SQL in the CRM, phones by PUTs of edited cards),
    then one round: items per second both ways;
(d) CRM change → card latency: `pimsync --watch`'s loop in a thread, one contact edited at a
    time, polled on the server until its card shows it; p50 and p99 of SAMPLES.
Prints seconds of each, the ratio b/a and the latencies. Events (the issue's 2,000) are not
synced yet: not measured.

    .venv/bin/python bench/pimsync.py [--count 5000] [--changes 500] [--samples 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pimsync.radicale_server import Radicale  # noqa: E402
from tests.pimsync.world import World, edited  # noqa: E402


def import_contacts(w: World, n: int) -> None:
    import sqlalchemy as sa

    rows = [
        {"owner": w.owner(w.alice), "first": "Person", "last": f"No{i:05}", "title": "Buyer", "city": "Bergen"} for i in range(n)
    ]
    with w.crm._engine.connect() as conn, conn.begin():
        conn.execute(
            sa.text(
                "INSERT INTO contacts (owner, fields, created_by_gateway, created_at, first_name, last_name, title, city) "
                "VALUES (:owner, '{}', false, CURRENT_TIMESTAMP, :first, :last, :title, :city)"
            ),
            rows,
        )


def bare_puts(w: World, n: int) -> dict[str, Any]:
    from gateway.crm.sync import ContactFields
    from gateway.pimsync.vcard import render

    url = w.radicale.make_addressbook(w.bob, "baseline")
    cards = [
        render(ContactFields(first_name="Person", last_name=f"No{i:05}", title="Buyer"), f"b{i}", f"contact:{i}")
        for i in range(n)
    ]
    t0 = time.perf_counter()
    with w.radicale.client(w.bob) as c:
        for i, text in enumerate(cards):
            r = c.put(f"{url}b{i}.vcf", content=text, headers={"Content-Type": "text/vcard", "If-None-Match": "*"})
            assert r.status_code == 201, r.text
    return {"cards": n, "seconds": round(time.perf_counter() - t0, 3)}


def timed_round(w: World) -> tuple[float, Any]:
    from gateway.pimsync.rounds import sync_all

    t0 = time.perf_counter()
    reports, failed = sync_all(w.home.config(), [f"{w.alice}-contacts"])
    assert not failed, failed
    return time.perf_counter() - t0, reports[0]


def edit_both_sides(w: World, n: int) -> None:
    ids = [r[0] for r in w.sql("SELECT id FROM contacts ORDER BY id")]
    for cid in ids[:n]:
        w.sql("UPDATE contacts SET title = 'Head buyer' WHERE id = ?", cid)
    hrefs = sorted(w.cards(w.alice))[-n:]  # other contacts than the CRM's edits
    for href in hrefs:
        etag, text = w.card_text(w.alice, href)
        w.put_card(w.alice, href, edited(text, tel="+47 555 0100"), etag)


def latency(w: World, samples: int) -> dict[str, float]:
    from gateway.pimsync.rounds import PimSync
    from gateway.pimsync.watch import watch

    ids = [r[0] for r in w.sql("SELECT id FROM contacts ORDER BY id")][:samples]
    stop = threading.Event()
    sync = PimSync(w.home.config(), [f"{w.alice}-contacts"])
    loop = threading.Thread(target=watch, args=(sync, stop, lambda _r: None), kwargs={"every": 3600}, daemon=True)
    loop.start()
    out: list[float] = []
    try:
        time.sleep(3)  # the loop's first round
        for n, cid in enumerate(ids):
            title = f"Sample {n}"
            href = f"/{w.alice}/contacts/crm-contact-{cid}.vcf"
            t0 = time.perf_counter()
            w.sql("UPDATE contacts SET title = ? WHERE id = ?", title, cid)
            while f"TITLE:{title}" not in w.card_text(w.alice, href)[1]:
                time.sleep(0.02)
            out.append(time.perf_counter() - t0)
    finally:
        stop.set()
        loop.join(timeout=600)
        sync.close()
    out.sort()
    return {"p50": round(statistics.median(out), 3), "p99": round(out[min(len(out) - 1, int(len(out) * 0.99))], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000, help="contacts in the CRM (default 5000)")
    ap.add_argument("--changes", type=int, default=500, help="edits on each side (default 500)")
    ap.add_argument("--samples", type=int, default=40, help="latency samples (default 40)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pimsync-") as tmp:
        work = Path(tmp)
        (work / "dav").mkdir()
        with Radicale(work / "dav", ["alice", "bob"]) as radicale:
            w = World(work / "home", radicale, "alice", "bob")
            try:
                import_contacts(w, args.count)
                a = bare_puts(w, args.count)
                first, report = timed_round(w)
                edit_both_sides(w, args.changes)
                second, changed = timed_round(w)
                lat = latency(w, args.samples)
            finally:
                w.close()
    result = {
        "contacts": args.count,
        "bare_puts": a,
        "first_round": {"seconds": round(first, 3), "cards_created": report.cards_created},
        "ratio": round(first / a["seconds"], 2) if a["seconds"] else None,
        "changes_round": {
            "seconds": round(second, 3),
            "crm_to_card": changed.cards_updated,
            "card_to_crm": changed.records_updated,
            "items_per_second": round((changed.cards_updated + changed.records_updated) / second, 1) if second else None,
        },
        "latency_seconds": lat,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"(a) {a['cards']} bare PUTs:                  {a['seconds']:8.3f}s")
    print(f"(b) first round, {report.cards_created} cards created: {first:8.3f}s   ratio b/a {result['ratio']}")
    c = result["changes_round"]
    print(
        f"(c) {args.changes} edits each side, one round:   {second:8.3f}s   {c['crm_to_card']} CRM→card, {c['card_to_crm']} card→CRM, {c['items_per_second']} items/s"
    )
    print(f"(d) CRM change → card latency (watch): p50 {lat['p50']}s, p99 {lat['p99']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
