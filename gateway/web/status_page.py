"""The HTML overview at `/`: sources, folders, counts, rule errors and each mailbox."""

from __future__ import annotations

import html
from typing import Any

from gateway.admin import operations as admin


def page(doc: dict[str, Any], review: int, quarantined: int) -> str:
    rows = []
    for src in doc["sources"]:
        for f in src["folders"]:
            counts = ", ".join(f"{k} {v}" for k, v in f["counts"].items()) or "-"
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(x))}</td>"
                    for x in (
                        src["name"],
                        f["folder"],
                        "yes" if src["connected"] else "no",
                        f.get("mode") or src.get("mode") or "-",
                        (src.get("last_sync") or "-")[:19],
                        counts,
                        f.get("last_error") or src.get("last_error") or "",
                        admin.ago(src.get("status_age_seconds")),
                    )
                )
                + "</tr>"
            )
    errors = "".join(f"<li>{html.escape(e)}</li>" for e in doc["rules"].get("errors") or [])
    summary = "".join(
        f'<li class="{"down" if bad else ""}">{html.escape(line.strip())}</li>' for line, bad in admin.mailbox_lines(doc)
    )
    boxes = (f"<h2>Mailboxes</h2><ul>{summary}</ul>" if summary else "") + _mailboxes(doc, titled=not summary)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>crm-gateway status</title>
<meta http-equiv="refresh" content="10"><style>body{{font-family:sans-serif;margin:2em}}
table{{border-collapse:collapse}}.down{{color:#b00;font-weight:bold}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>
<h1>crm-gateway</h1>
<p class="{"up" if doc.get("running") else "down"}">{html.escape(admin.liveness_line(doc))};
page made {html.escape(str(doc.get("generated_at", ""))[:19])} UTC</p>
<p>{len(doc["rules"].get("rules", []))} rules in force; <a href="/review.json">{review} waiting for review</a>;
<a href="/quarantine.json">{quarantined} quarantined</a>; <a href="/metrics">metrics</a></p>
{f"<h2>Rule errors (the previous rules still run)</h2><ul>{errors}</ul>" if errors else ""}
<table><tr><th>source</th><th>folder</th><th>connected</th><th>mode</th><th>last sync</th><th>counts</th><th>last error</th><th>status written</th></tr>
{"".join(rows)}</table>{boxes}</body></html>"""


def _mailboxes(doc: dict[str, Any], *, titled: bool = True) -> str:
    """Each mailbox of the sources that reach many (`mailboxes:`), the troubled ones first."""
    rows = []
    for src in doc["sources"]:
        # IMAP: `mailboxes` {user: its watch}; EWS and Graph: `mailbox_health` {address: its health}
        listed = src.get("mailboxes") if isinstance(src.get("mailboxes"), dict) else {}
        health = src.get("mailbox_health") if isinstance(src.get("mailbox_health"), dict) else {}
        cells = [
            (user, b.get("watch") or "-", b.get("restarts") or 0, b.get("restart_reason") or "", b.get("last_error") or "")
            for user, b in listed.items()
        ] + [(address, h.get("state") or "-", "", "", h.get("last_error") or "") for address, h in health.items()]
        for user, state, restarts, why, error in sorted(cells, key=lambda c: (c[1] == "watching", c[0])):
            row = (src["name"], user, state, restarts, why, error)
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>")
        if src.get("roster_error"):
            row = (src["name"], "(the list)", "not read again", "", "", src["roster_error"])
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>")
    if not rows:
        return ""
    return (
        ("<h2>Mailboxes</h2>" if titled else "") + "<table><tr><th>source</th><th>mailbox</th><th>watch</th><th>restarts</th>"
        f"<th>last restart, why</th><th>last error</th></tr>{''.join(rows)}</table>"
    )
