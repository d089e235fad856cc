"""Throughput of the pipeline into Tryton vs into the embedded CRM, on the same corpus, in one run.

    .venv/bin/python bench/connectors.py [--count 300] [--workers 2] [--known 40] [--json]

1. builds the benchmark corpus (bench/corpus.py, same seed: the same bytes every run);
2. embedded: a gateway home on the shipped rules and the SQLite CRM, `Gateway.run_once()`;
3. Tryton: a real trytond (party + sale_opportunity, SQLite; built like the tests do, in
   tests/crm/tryton_server.py) and the same corpus with `crm.backend: tryton`;
   every JSON-RPC request is counted by the connector's client;
4. known senders: K fresh mails from a person Tryton already has, into `VContacts` and into
   `CRM sync`, and the JSON-RPC requests they cost, per message.

Prints msgs/s for both CRMs, their ratio, and requests per message (all mail, and known
senders per folder). Figures depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import corpus  # noqa: E402
from bench.pipeline import deliver, make_home  # noqa: E402


def _set_crm(config_path: Path, crm: dict[str, Any]) -> None:
    import yaml

    cfg = yaml.safe_load(config_path.read_text())
    cfg["crm"] = crm
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _run(config_path: Path, connector: Any = None) -> tuple[dict[str, int], float]:
    from gateway.config import load_config
    from gateway.runtime.gateway import Gateway

    gw = Gateway(load_config(config_path), connector=connector) if connector else Gateway(load_config(config_path))
    t0 = time.perf_counter()
    try:
        summary = gw.run_once()
    finally:
        elapsed = time.perf_counter() - t0
        gw.close()
    return summary, elapsed


def _known_sender_mail(n: int, sender: str, folder_tag: str) -> bytes:
    from datetime import UTC, datetime
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    m = EmailMessage()
    m["From"] = sender
    m["To"] = f"Me <{corpus.OWNER}>"
    m["Subject"] = f"Known sender {folder_tag} {n}"
    m["Date"] = format_datetime(datetime(2026, 11, 20, 12, n % 60, tzinfo=UTC))
    m["Message-ID"] = make_msgid(domain="bench.example")
    m.set_content(f"Mail number {n} from a known sender.\n")
    return bytes(m)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--known", type=int, default=40, help="mails from a known sender, per folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from tests.crm.tryton_server import TrytonTemplate, skip_reason

    reason = skip_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    work = Path(tempfile.mkdtemp(prefix="bench-connectors-"))
    out: dict[str, Any] = {"count": args.count, "workers": args.workers}
    try:
        say(f"corpus: {args.count} messages ...")
        corpus.build(work / "corpus", args.count)

        say("embedded CRM (SQLite) ...")
        home = work / "embedded"
        home.mkdir()
        cfg = make_home(home, args.workers)
        n = deliver(work / "corpus", home)
        summary, secs = _run(cfg)
        out["embedded"] = {"messages": n, "seconds": round(secs, 2), "msgs_per_s": round(n / secs, 1), "states": summary}

        say("Tryton: building the database (once) ...")
        template = TrytonTemplate(work / "tryton-template").build()
        server = template.server(work / "tryton")
        try:
            from gateway.config import load_config
            from gateway.runtime.parts import crm_connector

            home = work / "tryton-home"
            home.mkdir()
            cfg = make_home(home, args.workers)
            _set_crm(
                cfg,
                {
                    "backend": "tryton",
                    "url": server.url,
                    "database": server.database,
                    "username": server.username,
                    "password": server.password,
                },
            )

            def fresh() -> Any:  # Gateway.close() closes its connector: one per run
                c = crm_connector(load_config(cfg))
                c.find("warm-up@bench.example", ["contact"])  # log-in and set-up: not per message
                return c

            n = deliver(work / "corpus", home)
            connector = fresh()
            before = connector.rpc.requests
            say("Tryton: the corpus ...")
            summary, secs = _run(cfg, connector)
            used = connector.rpc.requests - before
            out["tryton"] = {
                "messages": n,
                "seconds": round(secs, 2),
                "msgs_per_s": round(n / secs, 1),
                "states": summary,
                "requests": used,
                "requests_per_message": round(used / n, 2),
            }

            from gateway.crm.base import PartyData

            sender = "Kim Known <kim.known@known.example>"
            connector = fresh()
            connector.create(
                "contact", PartyData(kind="contact", first_name="Kim", last_name="Known", emails=("kim.known@known.example",))
            )
            connector.close()
            known: dict[str, Any] = {}
            for folder in ("VContacts", "CRM sync"):
                for i in range(args.known):
                    (home / "var" / "mail" / folder / "new" / f"known-{folder.replace(' ', '_')}-{i}.eml").write_bytes(
                        _known_sender_mail(i, sender, folder)
                    )
                connector = fresh()
                before = connector.rpc.requests
                summary, secs = _run(cfg, connector)
                used = connector.rpc.requests - before
                known[folder] = {
                    "messages": args.known,
                    "states": summary,
                    "requests": used,
                    "requests_per_message": round(used / args.known, 2),
                }
            out["tryton_known_sender"] = known
        finally:
            server.stop()
        out["ratio_tryton_to_embedded"] = round(out["tryton"]["msgs_per_s"] / out["embedded"]["msgs_per_s"], 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(out, indent=2))
    else:
        e, t = out["embedded"], out["tryton"]
        print(f"\nembedded CRM : {e['msgs_per_s']:>7} msgs/s  ({e['messages']} in {e['seconds']} s) {e['states']}")
        print(f"Tryton       : {t['msgs_per_s']:>7} msgs/s  ({t['messages']} in {t['seconds']} s) {t['states']}")
        print(f"Tryton/embedded throughput: {out['ratio_tryton_to_embedded']}")
        print(f"Tryton requests per message, whole corpus: {t['requests_per_message']} ({t['requests']} requests)")
        for folder, k in out["tryton_known_sender"].items():
            print(f"Tryton requests per message, known sender in {folder!r}: {k['requests_per_message']} {k['states']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
