"""Console and API benchmark: page times with a big ledger.

A gateway home (two Maildir mailboxes, an admin and a user who owns one of them, the embedded
CRM on SQLite) whose ledger holds N messages (default 100,000): a few real ones run through the
rules (one left for review, one filed), then copies of their rows written in bulk — 90% filed,
5% waiting for review (each with the real one's candidates), 5% quarantined — half in each
mailbox. Then, through the web app in this process (Starlette's TestClient: the app's own
time, no network), each page is asked REPEAT times as the admin and as the user:

  review    GET /api/v1/review?limit=50            the review queue's first page
  search    GET /api/v1/messages?q=WORD&limit=50   a word of the subject
  sender    GET /api/v1/messages?sender=PART       part of a sender's address
  message   GET /api/v1/messages/{id}              one message in full
  page:review, page:message   the console's HTML pages of the same
  healthz   GET /healthz                           the baseline: the app's floor

Prints p50 and p95 in milliseconds per page and p95 as a ratio of the baseline's p95. The
target: every page's p95 under 200 ms on a two-core machine.

    .venv/bin/python bench/console.py [--count 100000] [--repeat 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.mail import make_mail  # noqa: E402
from tests.web.fixtures import drop_other, sign_in, web_home  # noqa: E402

PAGES = {
    "review": "/api/v1/review?limit=50",
    "search": "/api/v1/messages?q=quarterly&limit=50",
    "sender": "/api/v1/messages?sender=buyer12&limit=50",
    "message": "/api/v1/messages/{id}",
    "page:review": "/console/review",
    "page:message": "/console/messages/{id}",
    "healthz": "/healthz",
}


def seed(home: Any) -> dict[str, int]:
    """Real messages through the rules: one for review and one filed in each mailbox."""
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", subject="review me", message_id="<r@x.example>"))
    home.drop("VLeads", make_mail(sender="Lead <lead@lead.example>", subject="file me", message_id="<d@x.example>"))
    drop_other(home, "VLeads", make_mail(sender="Bob's <b@bob.example>", to="bob@example.com", subject="bob's"))
    home.run_once()
    return home.states()


def fill(home: Any, count: int) -> None:
    """Copy the seeded rows in bulk until the ledger holds `count` messages."""
    from sqlalchemy import func, insert, select

    from gateway.ledger.schema import locations, messages

    led = home.ledger()
    try:
        with led.engine.begin() as c:
            rows = {r.state: r._asdict() for r in c.execute(select(messages)).all()}
            locs = {r.message_pk: r._asdict() for r in c.execute(select(locations)).all()}
            first = int(c.execute(select(func.max(messages.c.id))).scalar_one()) + 1
            first_loc = int(c.execute(select(func.max(locations.c.id))).scalar_one()) + 1
            kinds = [("done", 90), ("review", 5), ("quarantined", 5)]
            batch_m: list[dict[str, Any]] = []
            batch_l: list[dict[str, Any]] = []
            for n in range(count - len(rows)):
                pk = first + n
                state = next(s for s, share in _spread(kinds) if n % 100 < share)
                template = rows["review"] if state == "review" else rows["done"]
                loc = locs[template["id"]]
                word = "quarterly" if n % 97 == 0 else "weekly"
                batch_m.append(
                    {
                        **template,
                        "id": pk,
                        "identity": f"<bulk{pk}@bench.example>|h",
                        "message_id": f"<bulk{pk}@bench.example>",
                        "state": state,
                        "reason": "the CRM refused it" if state == "quarantined" else template["reason"],
                        "subject": f"{word} report {pk}",
                        "from_address": f"buyer{pk % 1000}@customer{pk % 50}.example",
                        "primary_location": first_loc + n,
                    }
                )
                source, account = ("local", loc["account"]) if n % 2 == 0 else ("other", loc["account"])
                batch_l.append(
                    {**loc, "id": first_loc + n, "message_pk": pk, "source": source, "account": account, "item_key": f"bulk-{pk}"}
                )
                if len(batch_m) == 5000:
                    c.execute(insert(messages), batch_m)
                    c.execute(insert(locations), batch_l)
                    batch_m, batch_l = [], []
            if batch_m:
                c.execute(insert(messages), batch_m)
                c.execute(insert(locations), batch_l)
    finally:
        led.close()


def _spread(kinds: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """(state, cumulative share of 100)."""
    out, total = [], 0
    for state, share in kinds:
        total += share
        out.append((state, total))
    return out


def timed(client: Any, path: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if res.status_code != 200:
            raise SystemExit(f"{path}: {res.status_code} {res.text[:300]}")
    return times


def p95(ms: list[float]) -> float:
    return statistics.quantiles(ms, n=20)[-1] if len(ms) >= 2 else ms[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000, help="messages in the ledger (default 100000)")
    ap.add_argument("--repeat", type=int, default=40, help="requests per page and person (default 40)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from starlette.testclient import TestClient

    from gateway.web.app import make_app

    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        home = web_home(Path(tmp))
        seeded = seed(home)
        t0 = time.perf_counter()
        fill(home, args.count)
        filled = time.perf_counter() - t0
        with home.gateway() as gw, TestClient(make_app(gw)) as client:
            one = client.get("/api/v1/messages?limit=1")  # before sign-in: refused
            assert one.status_code == 401, one.text
            for person in ("root", "me"):
                sign_in(client, person)
                newest = client.get("/api/v1/messages?limit=1").json()["messages"][0]["id"]
                for page, path in PAGES.items():
                    ms = timed(client, path.format(id=newest), args.repeat)
                    results.setdefault(person, {})[page] = {"p50": statistics.median(ms), "p95": p95(ms)}
                client.cookies.clear()
    doc = {"messages": args.count, "seeded": seeded, "fill_seconds": round(filled, 1), "pages": results}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"{args.count} messages in the ledger (bulk fill {filled:.1f}s); {args.repeat} requests per page")
        for person, pages in results.items():
            base = pages["healthz"]["p95"] or 1e-9
            print(f"as {'the admin' if person == 'root' else 'a user (one mailbox)'}:")
            for page, t in pages.items():
                print(f"  {page:12} p50 {t['p50']:7.1f} ms   p95 {t['p95']:7.1f} ms   p95/healthz {t['p95'] / base:6.1f}")
    worst = max(t["p95"] for pages in results.values() for p, t in pages.items() if p != "healthz")
    if not args.json:
        print(f"worst p95 {worst:.1f} ms; target under 200 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
