"""`status`: what the ledger's status document says, whether the gateway that wrote it still
runs, and how old each part is (the CLI's `status` and the status page share it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.admin.liveness import age_of, ago, liveness
from gateway.config import Config
from gateway.ledger import Ledger
from gateway.ledger.leases import Leases, lease_rows, ledger_time
from gateway.ledger.pim import BOOK_LEASE_SOURCE

STATES = (
    "done",
    "done_untagged",
    "ignored",
    "skipped",
    "review",
    "retrying",
    "quarantined",
    "received",
    "processing",
    "crm_done",
)


def status_doc(config: Config, ledger: Ledger | None = None) -> dict[str, Any]:
    """Status as `status --json` shows it; from the running gateway's ledger when given."""
    own = ledger is None
    led = ledger if ledger is not None else Ledger(config.db_url(config.ledger.url))
    try:
        stored = led.all_status()
        counts = led.counts()
        open_conflicts = led.pim().open_conflicts_by_book() if config.pimsync.addressbooks else {}
        leased, gws, ledger_now = (
            lease_rows(led),
            Leases(led, config.gateway_name, config.gateway.lease).gateways(),
            ledger_time(led),
        )
    finally:
        if own:
            led.close()
    now = datetime.now(UTC)
    live = liveness(stored.get("service"), now)
    holders: dict[str, list[dict[str, Any]]] = {}
    for r in leased:
        live_lease = r.owner is not None and r.expires_at > ledger_now
        holders.setdefault(r.mailbox.source, []).append(
            {
                "account": r.mailbox.account,
                "holder": r.owner if live_lease else None,
                "lease_expires_at": r.expires_at.isoformat() if live_lease else None,
                "last_holder": r.owner,
            }
        )
    sources = []
    for src in config.sources:
        st = stored.get(f"source:{src.name}", {})
        mine = holders.get(src.name, [])
        folders = []
        for folder in src.folders:
            c = counts.get((src.name, folder), {})
            fst = (st.get("folders") or {}).get(folder, {})
            if "connected" in fst and not live.running:  # as for the source: connected now, and what it was
                fst = {**fst, "connected": False, "last_connected": fst["connected"]}
            folders.append(
                {"folder": folder, **{k: v for k, v in fst.items()}, "counts": {s: c.get(s, 0) for s in STATES if c.get(s)}}
            )
        # `connected` is now: a stopped gateway is connected to nothing, whatever it wrote last
        sources.append(
            {
                "name": src.name,
                "type": src.type,
                "connected": bool(st.get("connected", False)) and live.running,
                "last_connected": st.get("connected", False),
                "mode": st.get("mode"),
                "last_sync": st.get("last_sync"),
                "last_error": st.get("last_error", ""),
                "status_written_at": st.get("updated_at"),
                "status_age_seconds": _rounded(age_of(st.get("updated_at"), now)),
                "folders": folders,
                # who watches each of its mailboxes (gateways sharing the ledger divide them by lease)
                "leases": mine,
                "holder": ", ".join(sorted({m["holder"] for m in mine if m["holder"]})) or None,
                **{
                    k: v
                    for k, v in st.items()
                    if k not in ("folders", "connected", "mode", "last_sync", "last_error", "updated_at", "type")
                },
            }
        )
    books = _books(config, stored, holders.get(BOOK_LEASE_SOURCE, []), open_conflicts, live.running)
    other = {k: v for (s, f), v in counts.items() for k in [f"{s}/{f}"] if s not in {x.name for x in config.sources}}
    rules = stored.get("rules")
    if rules is None:  # no gateway has run yet: say what the files hold now
        from gateway.config.rulesholder import load_for
        from gateway.errors import RuleError

        try:
            rs = load_for(config)
            rules = {"files": [str(f) for f in rs.files], "rules": [r.name for r in rs.rules], "loaded_at": None, "errors": []}
        except RuleError as exc:
            rules = {"files": [], "rules": [], "loaded_at": None, "errors": exc.problems}
    totals: dict[str, int] = {}
    for c in counts.values():
        for s, n in c.items():
            totals[s] = totals.get(s, 0) + n
    return {
        "sources": sources,
        "pimsync": books,
        "other": other,
        "rules": rules,
        "service": stored.get("service"),
        "gateway": config.gateway_name,
        "gateways": [
            {
                "name": g.name,
                "host": g.host,
                "pid": g.pid,
                "live": g.expires_at > ledger_now,
                "heartbeat_expires_at": g.expires_at.isoformat(),
                "mailboxes": sum(1 for r in leased if r.owner == g.name and r.expires_at > ledger_now),
            }
            for g in gws
        ],
        "totals": totals,
        "running": live.running,
        "liveness": live.to_json(),
        "generated_at": now.isoformat(),
    }


def _books(
    config: Config, stored: dict[str, Any], leased: list[dict[str, Any]], conflicts: dict[str, int], running: bool
) -> list[dict[str, Any]]:
    """Each configured address book of the contact sync: its last round as the gateway that
    holds it wrote it, who holds it, and its conflicts no person has settled."""
    holder = {m["account"]: m["holder"] for m in leased}
    out = []
    for b in config.addressbooks():
        st = stored.get(f"pimsync:{b.name}", {})
        out.append(
            {
                "book": b.name,
                "crm_user": b.crm_user,
                "holder": holder.get(b.name),
                "syncing": running and holder.get(b.name) is not None,
                "last_round_at": st.get("last_round_at"),
                "last_ok_at": st.get("last_ok_at"),
                "rounds": st.get("rounds", 0),
                "failed_rounds": st.get("failed_rounds", 0),
                "last_round": st.get("last_round"),
                "totals": st.get("totals") or {},
                "last_error": st.get("last_error") or st.get("task_error") or "",
                "conflicts_open": conflicts.get(b.name, 0),
            }
        )
    return out


def _book_line(b: dict[str, Any]) -> tuple[str, bool]:
    """`contacts-ann (ann): last round 12:00:01: 2 cards created, …; 1 conflict open`."""
    r = b.get("last_round")
    done = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in r.items() if n) or "nothing to do" if r else "no round yet"
    when = f"last round {str(b['last_round_at'])[:19]}: " if b.get("last_round_at") else ""
    err = f"; failing: {b['last_error'][:120]}" if b.get("last_error") else ""
    conflicts = f"; {b['conflicts_open']} conflicts open" if b.get("conflicts_open") else ""
    return f"address book {b['book']} ({b['crm_user']}): {when}{done}{conflicts}{err}", bool(err)


def _holder_cell(source: dict[str, Any]) -> str:
    """Who watches the source's mailboxes and until when its lease runs unrenewed."""
    cells = [
        f"{m['holder']} (lease to {str(m['lease_expires_at'])[11:19]})" if m["holder"] else "nobody"
        for m in source.get("leases") or []
    ]
    return "; ".join(cells) or "-"


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _watch_line(s: dict[str, Any]) -> str:
    """`mail: 200 mailboxes: watching 198, reconnecting 2; restarts 5 (u001: …)`, or for one
    mailbox its restarts; nothing for a source that never restarted a connection."""
    listed = s.get("mailboxes")  # IMAP: {user: its watch}; EWS and Graph: a list (see mailbox_lines)
    boxes: dict[str, dict[str, Any]] = listed if isinstance(listed, dict) else {}
    restarts = int(s.get("restarts") or 0)
    restarted = [(u, b) for u, b in boxes.items() if b.get("restarts")]
    last = f"{restarted[-1][0]}: {restarted[-1][1].get('restart_reason')}" if restarted else s.get("restart_reason") or ""
    why = f"; restarts {restarts} ({str(last)[:100]})" if restarts else ""
    if boxes:
        counts: dict[str, int] = {}
        for b in boxes.values():
            counts[str(b.get("watch"))] = counts.get(str(b.get("watch")), 0) + 1
        return f"{s['name']}: {len(boxes)} mailboxes: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) + why
    return f"{s['name']}: {s.get('watch', 'watching')}{why}" if restarts else ""


def liveness_line(doc: dict[str, Any]) -> str:
    """`gateway: running (pid 12), heartbeat 1 s ago` or why it is not running, and since when."""
    live = doc.get("liveness") or {}
    beat = ago(live.get("heartbeat_age_seconds"))
    if doc.get("running"):
        procs = (doc.get("service") or {}).get("processes") or 1
        how = f", {procs} worker processes" if procs > 1 else ""
        return f"gateway: running (pid {live.get('pid')}{how}), heartbeat {beat}"
    if not live.get("heartbeat_at"):
        return f"gateway: NOT running: {live.get('why')}"
    return f"gateway: NOT running: {live.get('why')} (last heartbeat {beat}); what follows is as it was then"


def render_status(doc: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title="crm-gateway status")
    for col in ("source", "folder", "gateway", "connected", "mode", "last sync", "cursor", "counts", "last error"):
        t.add_column(col, overflow="fold")
    running = doc.get("running", True)
    for s in doc["sources"]:
        for f in s["folders"]:
            c = f["counts"]
            cursor = f.get("cursor") or (f"{f.get('uidvalidity')}:{f.get('last_uid')}" if f.get("uidvalidity") else "-")
            mode = str(f.get("mode") or s["mode"] or "-") + (" late" if f.get("idle_late") else "")
            t.add_row(
                s["name"],
                f["folder"],
                _holder_cell(s),
                "yes" if s["connected"] else "no",
                mode if running or mode == "-" else f"({mode})",
                str(s["last_sync"] or "-")[:19],
                str(cursor),
                ", ".join(f"{k} {v}" for k, v in c.items()) or "-",
                (f.get("last_error") or s["last_error"] or "")[:80],
            )
    rules = doc["rules"]
    from rich.console import Group, RenderableType
    from rich.text import Text

    ages = [s.get("status_age_seconds") for s in doc["sources"] if s.get("status_age_seconds") is not None]
    lines: list[RenderableType] = [
        Text(liveness_line(doc), style="" if running else "bold red"),
        Text(f"source status written {ago(max(ages))}" if ages else "no source status written yet"),
        t,
        Text(
            f"rules: {len(rules['rules'])} in force from {len(rules['files'])} files"
            + (f", loaded {rules['loaded_at'][:19]}" if rules.get("loaded_at") else "")
        ),
    ]
    lines += [Text(line) for s in doc["sources"] if (line := _watch_line(s))]
    for g in doc.get("gateways") or []:
        state = "live" if g["live"] else "gone"
        lines.append(Text(f"gateway {g['name']} ({g['host']}, pid {g['pid']}): {state}, {g['mailboxes']} mailboxes held"))
    for e in rules.get("errors") or []:
        lines.append(Text(f"rule error (old rules still in force): {e}", style="red"))
    lines += [Text(line, style="red" if bad else "") for line, bad in mailbox_lines(doc)]
    lines += [Text(line, style="red" if bad else "") for line, bad in map(_book_line, doc.get("pimsync") or [])]
    return Group(*lines)


def mailbox_lines(doc: dict[str, Any]) -> list[tuple[str, bool]]:
    """Per source reaching many mailboxes: how many are in each state, then each failing one
    and a roster that could not be read again; (line, whether it reports a problem)."""
    out: list[tuple[str, bool]] = []
    for s in doc["sources"]:
        health = s.get("mailbox_health")
        if not health:
            continue
        states: dict[str, int] = {}
        for h in health.values():
            states[h["state"]] = states.get(h["state"], 0) + 1
        out.append((f"{s['name']}: mailboxes " + ", ".join(f"{n} {k}" for k, n in sorted(states.items())), False))
        out += [(f"  {mb}: {h['last_error'][:120]}", True) for mb, h in health.items() if h["state"] == "error"]
        if s.get("roster_error"):
            out.append((f"  mailbox list not read again (the last one is kept): {s['roster_error'][:120]}", True))
    return out
