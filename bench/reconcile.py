"""Reconcile benchmark against a private Dovecot (started here, unprivileged, 127.0.0.1).

A folder is filled with N mails of the corpus (MULTIAPPEND) and synced by the gateway
(`run --once` in-process: every copy in the ledger, the CRM, and tagged). Then, timed:
(a) the baseline: the bare IMAP listing of the same folder — login, SELECT, SEARCH ALL and
    UID FETCH of FLAGS and the Message-ID header for every UID, as a plain client does;
(b) `reconcile` of the folder (the listing, the ledger's side in bulk, the CRM's emails),
    in the same process, on the gateway that synced it.
Each runs twice and the faster run counts. Prints seconds of each and the ratio b/a; the
target is well under 10 s for 10,000 mails. The run's findings must be none (a synced folder).

    .venv/bin/python bench/reconcile.py [--count 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import corpus  # noqa: E402
from bench.imap import load_corpus, make_home  # noqa: E402
from tests.mailboxes.imap.dovecot import Dovecot, available  # noqa: E402

FOLDER = "VLeads"


def bare_listing(d: Dovecot, batch: int = 5000) -> dict[str, Any]:
    """What any client pays to see the folder: one SEARCH, FLAGS and Message-IDs in batches."""
    t0 = time.perf_counter()
    n = 0
    with d.client() as c:
        c.select_folder(FOLDER, readonly=True)
        uids = sorted(c.search("ALL"))
        for i in range(0, len(uids), batch):
            n += len(c.fetch(uids[i : i + batch], ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]))
    return {"copies": n, "seconds": round(time.perf_counter() - t0, 3)}


def timed_reconcile(gw: Any) -> dict[str, Any]:
    from gateway.admin.reconcile import reconcile

    t0 = time.perf_counter()
    report = reconcile(gw, folder=FOLDER)
    elapsed = time.perf_counter() - t0
    return {
        "copies": sum(f.copies for f in report.folders),
        "seconds": round(elapsed, 3),
        "findings": {k.value: n for k, n in report.counts().items() if n},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10000, help="mails in the folder (default 10000)")
    ap.add_argument("--workers", type=int, default=None, help="pipeline threads of the sync (default: the gateway's own)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not available():
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.WARNING)
    corpus.byte_compile_gateway()
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        work = Path(tmp)
        raws = load_corpus(work, args.count)
        d = Dovecot({"alice": "secret"})
        try:
            d.multiappend(FOLDER, raws)
            home = make_home(work / "home", d, [FOLDER], args.workers)
            gw = home.gateway()
            try:
                t0 = time.perf_counter()
                states = gw.run_once()
                sync = time.perf_counter() - t0
                runs = [(bare_listing(d), timed_reconcile(gw)) for _ in range(2)]
            finally:
                gw.close()
        finally:
            d.close()
    a = min((r[0] for r in runs), key=lambda r: r["seconds"])
    b = min((r[1] for r in runs), key=lambda r: r["seconds"])
    ratio = round(b["seconds"] / a["seconds"], 2) if a["seconds"] else None
    result = {"messages": len(raws), "sync_seconds": round(sync, 1), "states": states, "bare": a, "reconcile": b, "ratio": ratio}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if not b["findings"] else 1
    print(f"{len(raws)} mails in {FOLDER}, synced in {sync:.1f}s: {states}")
    print(f"(a) bare IMAP listing (SEARCH, FLAGS + Message-ID): {a['seconds']:7.3f}s  ({a['copies']} copies)")
    print(f"(b) reconcile of the folder:                        {b['seconds']:7.3f}s  ({b['copies']} copies)")
    print(f"ratio b/a {ratio}; findings {b['findings'] or 'none'}; target: well under 10 s for 10,000 mails")
    return 0 if not b["findings"] else 1


if __name__ == "__main__":
    sys.exit(main())
