"""Throughput and memory of the gateway pipeline, as a ratio to a naive baseline.

    .venv/bin/python bench/pipeline.py              # 3000 messages (one of them ~20 MB)
    .venv/bin/python bench/pipeline.py --quick      # 300 messages, the 20 MB one still in
    .venv/bin/python bench/pipeline.py --count 1000 --json

One run writes a reproducible corpus (bench/corpus.py, fixed seed) into a temporary folder,
then measures, each in its own child process (so one phase's memory never shows in the
other's peak RSS):

(a) baseline: for each message read the file, parse it with mail-parser (the gateway's parser)
    and insert one row into SQLite (WAL, synchronous=NORMAL, one commit per message);
(b) gateway: the same files hard-linked into a fresh gateway home (Maildir, layout fs, the
    shipped rules, embedded SQLite CRM and ledger, the config's default workers and batch),
    `Gateway(config).run_once()`.

Prints msgs/s for both, the ratio b/a (target >= 0.6), each phase's peak RSS (gateway target
< 250 MB), and the gateway's outcome counts; a short table then one JSON line (`--json`: only
the JSON). Nothing is asserted on timings; the exit code is 1 only when the run itself fails
or the gateway did not account for every message.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

TARGET_RATIO = 0.6
# `--db postgresql`: the baseline inserts into PostgreSQL and the gateway keeps its ledger and
# embedded CRM there (127.0.0.1:5432, trust auth, user postgres; a fresh database per phase).
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


def _on_postgres() -> bool:
    return os.environ.get("BENCH_DB") == "postgresql"


def _fresh_pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.format(db=name)


TARGET_RSS_MB = 250


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------- phase (a): baseline


def _tree_pids(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return pids


def _tree_memory_mb() -> tuple[float, float]:
    """(RSS, PSS) summed over this process and its descendants, in MB. PSS shares the pages
    the processes share, so it is the honest total; RSS counts shared pages in every process."""
    rss = pss = 0
    for pid in _tree_pids(os.getpid()):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


class _TreeSampler:
    """Samples the process tree's memory every 100 ms: peak total RSS and PSS of all processes.

    Reading smaps_rollup costs CPU the measured run would otherwise have, so it samples only
    when there are several processes (one process reports its own exact peak)."""

    def __init__(self, enabled: bool = True) -> None:
        import threading

        self.enabled = enabled
        self.peak_rss = self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.enabled and not self._stop.wait(0.1):
            rss, pss = _tree_memory_mb()
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def __enter__(self) -> _TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def phase_baseline(corpus_dir: Path, work: Path) -> dict[str, Any]:
    import sqlite3

    import mailparser

    items = corpus.files(corpus_dir)
    rss_start = _peak_rss_mb()
    db: Any
    if _on_postgres():
        import psycopg

        _fresh_pg_database("bench_baseline")
        db = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="bench_baseline", autocommit=True)
        db.execute(
            "CREATE TABLE mail (id SERIAL PRIMARY KEY, folder TEXT, message_id TEXT, subject TEXT, "
            "from_addr TEXT, to_addr TEXT, date TEXT, size INTEGER, attachments INTEGER, body TEXT)"
        )
        insert = (
            "INSERT INTO mail (folder, message_id, subject, from_addr, to_addr, date, size, attachments, body) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
    else:
        db = sqlite3.connect(work / "baseline.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE mail (id INTEGER PRIMARY KEY, folder TEXT, message_id TEXT, subject TEXT, "
            "from_addr TEXT, to_addr TEXT, date TEXT, size INTEGER, attachments INTEGER, body TEXT)"
        )
        insert = (
            "INSERT INTO mail (folder, message_id, subject, from_addr, to_addr, date, size, attachments, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
    n = nbytes = 0
    t0 = time.perf_counter()
    for folder, path in items:
        raw = path.read_bytes()
        mail = mailparser.parse_from_bytes(raw)
        frm = mail.from_[0][1] if mail.from_ else ""
        to = ", ".join(a for _, a in mail.to)
        db.execute("BEGIN")
        db.execute(
            insert,
            (
                folder,
                mail.message_id,
                mail.subject,
                frm,
                to,
                str(mail.date),
                len(raw),
                len(mail.attachments),
                (mail.text_plain[0][:2000] if mail.text_plain else "").replace("\x00", ""),
            ),
        )
        db.execute("COMMIT")
        n += 1
        nbytes += len(raw)
    elapsed = time.perf_counter() - t0
    rows = db.execute("SELECT count(*) FROM mail").fetchone()[0]
    db.close()
    return {
        "phase": "baseline",
        "messages": n,
        "rows": rows,
        "bytes": nbytes,
        "seconds": elapsed,
        "msgs_per_s": n / elapsed,
        "rss_after_import_mb": rss_start,
        "peak_rss_mb": _peak_rss_mb(),
    }


# ---------------------------------------------------------------- phase (b): gateway


def make_home(root: Path, workers: int | None, processes: int = 1) -> Path:
    """A gateway home like tests/fixtures.py's Home: config.yaml, rules/, var/mail (Maildir, fs)."""
    import yaml

    shutil.copytree(REPO / "rules", root / "rules")
    mail = root / "var" / "mail"
    for f in corpus.FOLDERS:
        for sub in ("new", "cur", "tmp"):
            (mail / f / sub).mkdir(parents=True, exist_ok=True)
    on_pg = _on_postgres()
    cfg = {
        "ledger": {"url": _fresh_pg_database(f"bench_ledger_{processes}") if on_pg else "sqlite:///var/gateway.db"},
        "crm": {"backend": "sql", "url": _fresh_pg_database(f"bench_crm_{processes}") if on_pg else "sqlite:///var/crm.db"},
        "rules": ["rules/*.yaml"],
        "processes": processes,
        "internal_domains": ["example.com"],
        "sources": [
            {
                "name": "local",
                "type": "maildir",
                "path": "var/mail",
                "layout": "fs",
                "owner": [corpus.OWNER],
                "crm_user": corpus.OWNER,
                "folders": corpus.FOLDERS,
            }
        ],
    }
    if workers is not None:  # else the gateway's default for its CRM
        cfg["workers"] = workers
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def deliver(corpus_dir: Path, home: Path) -> int:
    """Hard-link (or copy) every corpus file into the home's Maildir, so the gateway sees fresh files."""
    n = 0
    for folder, path in corpus.files(corpus_dir):
        target = home / "var" / "mail" / folder / "new" / path.name
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        n += 1
    return n


def phase_gateway(corpus_dir: Path, work: Path, workers: int | None, processes: int = 1) -> dict[str, Any]:
    from gateway.config import load_config
    from gateway.runtime.gateway import Gateway

    home = work / "home"
    home.mkdir()
    config_path = make_home(home, workers, processes)
    delivered = deliver(corpus_dir, home)
    rss_start = _peak_rss_mb()
    t0 = time.perf_counter()
    gw = Gateway(load_config(config_path))
    t1 = time.perf_counter()
    with _TreeSampler(enabled=processes > 1) as tree:
        try:
            summary = gw.run_once()
        finally:
            t2 = time.perf_counter()
            gw.close()
    elapsed = t2 - t1
    crm = _pg_crm_counts(gw.config.crm.url) if _on_postgres() else _crm_counts(home / "var" / "crm.db")
    return {
        "phase": "gateway",
        "messages": delivered,
        "seconds": elapsed,
        "init_seconds": t1 - t0,
        "msgs_per_s": delivered / elapsed,
        "states": summary,
        "crm": crm,
        "workers": gw.config.workers,
        "processes": processes,
        "rss_after_import_mb": rss_start,
        "main_peak_rss_mb": _peak_rss_mb(),
        # the total over all processes; equal to the main process's own peak when there is one
        "peak_rss_mb": max(tree.peak_rss, _peak_rss_mb()) if processes > 1 else _peak_rss_mb(),
        "peak_pss_mb": tree.peak_pss if processes > 1 else None,
    }


def _pg_crm_counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            names = [t for t in sa.inspect(c).get_table_names() if t != "alembic_version"]
            return {t: c.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in sorted(names)}
    finally:
        engine.dispose()


def _crm_counts(db: Path) -> dict[str, int]:
    import sqlite3

    out: dict[str, int] = {}
    con = sqlite3.connect(db)
    try:
        for (table,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'alembic_version' ORDER BY name"
        ):
            out[table] = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        con.close()
    return out


# ---------------------------------------------------------------- driver


def run_child(phase: str, corpus_dir: Path, work: Path, workers: int | None, processes: int = 1) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its own peak RSS is in its answer, cross-checked with wait4."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--phase",
        phase,
        "--corpus",
        str(corpus_dir),
        "--work",
        str(work),
        "--processes",
        str(processes),
    ] + (["--workers", str(workers)] if workers else [])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"phase {phase} failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"phase {phase} printed no result:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["wait4_maxrss_mb"] = usage.ru_maxrss / 1024
    result["stderr_lines"] = len(stderr.splitlines())
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=None, help="messages in the corpus (default 3000; --quick: 300)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 messages, the 20 MB one still in")
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gateway pipeline threads with one process (default: the gateway's own, 1 for the embedded CRM)",
    )
    ap.add_argument(
        "--processes", default="1,2", help="gateway runs to measure, by worker processes (default '1,2': one process, then two)"
    )
    ap.add_argument(
        "--db",
        choices=["sqlite", "postgresql"],
        default=os.environ.get("BENCH_DB", "sqlite"),
        help="where the baseline inserts and the gateway keeps its ledger and CRM (postgresql: 127.0.0.1:5432, user postgres)",
    )
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (corpus, databases) and print it")
    ap.add_argument("--phase", choices=["baseline", "gateway"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ["BENCH_DB"] = args.db  # the phases run in child processes, which read it
    if not args.phase:
        corpus.byte_compile_gateway()

    if args.phase:  # child
        if args.phase == "baseline":
            result = phase_baseline(args.corpus, args.work)
        else:
            result = phase_gateway(args.corpus, args.work, args.workers, int(args.processes))
        print(json.dumps(result), flush=True)
        return 0

    count = args.count or (300 if args.quick else 3000)
    runs = [int(p) for p in str(args.processes).split(",") if p.strip()]
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    try:
        t0 = time.perf_counter()
        manifest = corpus.build(tmp / "corpus", count, args.seed)
        gen_s = time.perf_counter() - t0
        say(
            f"corpus: {count} messages, {manifest['bytes'] / 1e6:.1f} MB (largest {manifest['largest'] / 1e6:.1f} MB), "
            f"{manifest['by_kind']}, folders {manifest['by_folder']}, {manifest['outbound']} sent, "
            f"{manifest['automated']} automated, {manifest['new_senders']} from new senders, written in {gen_s:.1f}s"
        )
        say(f"phase a: baseline (read + mail-parser + {args.db} insert, commit per message) ...")
        base = run_child("baseline", tmp / "corpus", tmp / "a", args.workers)
        say(f"  {base['msgs_per_s']:.0f} msgs/s in {base['seconds']:.1f}s")
        gws = []
        for n in runs:
            label = f"{n} worker processes" if n > 1 else f"one process, {args.workers or 'default'} threads"
            say(f"phase b: gateway run_once, {label} (shipped rules, embedded CRM and ledger on {args.db}) ...")
            gws.append(run_child("gateway", tmp / "corpus", tmp / f"b{n}", args.workers, n))
            say(f"  {gws[-1]['msgs_per_s']:.0f} msgs/s in {gws[-1]['seconds']:.1f}s")

        ok = base["rows"] == count and all(sum(g["states"].values()) == count for g in gws)
        result = {
            "count": count,
            "db": args.db,
            "seed": args.seed,
            "corpus_mb": round(manifest["bytes"] / 1e6, 1),
            "largest_mb": round(manifest["largest"] / 1e6, 1),
            "corpus_seconds": round(gen_s, 2),
            "baseline": {
                "msgs_per_s": round(base["msgs_per_s"], 1),
                "seconds": round(base["seconds"], 2),
                "peak_rss_mb": round(base["peak_rss_mb"], 1),
            },
            "gateway": [
                {
                    "processes": g["processes"],
                    "workers": g["workers"],
                    "msgs_per_s": round(g["msgs_per_s"], 1),
                    "seconds": round(g["seconds"], 2),
                    "init_seconds": round(g["init_seconds"], 2),
                    "ratio": round(g["msgs_per_s"] / base["msgs_per_s"], 3),
                    "peak_rss_mb": round(g["peak_rss_mb"], 1),
                    "peak_pss_mb": round(g["peak_pss_mb"], 1) if g["peak_pss_mb"] is not None else None,
                    "states": g["states"],
                    "crm": g["crm"],
                }
                for g in gws
            ],
            "target_ratio": TARGET_RATIO,
            "target_rss_mb": TARGET_RSS_MB,
            "all_accounted": ok,
        }
        if not args.json:
            rows = [
                ("", "msgs/s", "ratio", "seconds", "peak RSS MB", "peak PSS MB"),
                ("(a) baseline", f"{base['msgs_per_s']:.0f}", "1.00", f"{base['seconds']:.1f}", f"{base['peak_rss_mb']:.0f}", ""),
            ]
            for g in gws:
                name = f"(b) gateway x{g['processes']}" if g["processes"] > 1 else "(b) gateway"
                rows.append(
                    (
                        name,
                        f"{g['msgs_per_s']:.0f}",
                        f"{g['msgs_per_s'] / base['msgs_per_s']:.2f}",
                        f"{g['seconds']:.1f}",
                        f"{g['peak_rss_mb']:.0f}",
                        f"{g['peak_pss_mb']:.0f}" if g["peak_pss_mb"] is not None else "",
                    )
                )
            print()
            for r in rows:
                print(f"{r[0]:<18}{r[1]:>8}{r[2]:>8}{r[3]:>9}{r[4]:>13}{r[5]:>13}")
            print(
                f"targets: ratio >= {TARGET_RATIO}, peak memory < {TARGET_RSS_MB} MB "
                "(with several processes: the sum over all of them, RSS counting shared pages in each, PSS once)"
            )
            for g in gws:
                accounted = sum(g["states"].values())
                print(
                    f"gateway x{g['processes']} outcomes: "
                    + ", ".join(f"{k} {v}" for k, v in sorted(g["states"].items()))
                    + f" = {accounted} of {count}"
                    + ("" if accounted == count else "  <-- NOT ALL ACCOUNTED FOR")
                )
            print("CRM rows: " + ", ".join(f"{k} {v}" for k, v in gws[-1]["crm"].items()))
            if args.keep:
                print(f"kept: {tmp}")
        print(json.dumps(result), flush=True)
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
