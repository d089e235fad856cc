"""Starlette app of the status page (served by `run` when `web.listen` is set).

GET /              an HTML overview (sources, folders, counts, rule errors)
GET /status.json   the `status --json` document (with `running`, the heartbeat's age and each status's age)
GET /review.json   messages waiting for a person (`review list --json`)
GET /quarantine.json  messages that failed for good (`quarantine list --json`)
GET /metrics       Prometheus text format, read from the ledger at scrape time
GET /healthz       200 while the gateway runs

Read-only and without authentication: it listens on 127.0.0.1 by default; put it behind a
proxy with authentication before exposing it.
"""

from __future__ import annotations

import html
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin import operations as admin
from gateway.web import console, outlook


class _LedgerCollector:
    """Gauges computed from the ledger when Prometheus scrapes, so they are never stale."""

    def __init__(self, gw: Any) -> None:
        self.gw = gw

    def collect(self) -> Any:
        messages = GaugeMetricFamily(
            "crm_gateway_messages", "Copies of mail by source, folder and state", labels=["source", "folder", "state"]
        )
        for (source, folder), states in self.gw.ledger.counts().items():
            for state, n in states.items():
                messages.add_metric([source, folder, state], n)
        yield messages
        connected = GaugeMetricFamily("crm_gateway_source_connected", "1 when the source is connected", labels=["source"])
        for source in self.gw.sources:  # live, not the status the service writes every few seconds
            try:
                up = bool(source.status().get("connected"))
            except Exception:
                up = False
            connected.add_metric([source.name], 1.0 if up else 0.0)
        yield connected
        rules = self.gw.rules.status()
        yield GaugeMetricFamily("crm_gateway_rules", "Rules in force", value=len(rules.get("rules", [])))
        yield GaugeMetricFamily(
            "crm_gateway_rule_errors", "Errors of the last rule edit (old rules still run)", value=len(rules.get("errors") or [])
        )
        yield GaugeMetricFamily("crm_gateway_queue", "Copies waiting for a pipeline worker", value=self.gw.queue.qsize())


def _page(doc: dict[str, Any], review: int, quarantined: int) -> str:
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


def make_app(gw: Any) -> Starlette:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_LedgerCollector(gw))

    async def index(_: Request) -> Response:
        doc = admin.status_doc(gw.config, gw.ledger)
        return HTMLResponse(_page(doc, len(admin.listing(gw, "review")), len(admin.listing(gw, "quarantined"))))

    async def status(_: Request) -> Response:
        return JSONResponse(admin.status_doc(gw.config, gw.ledger))

    async def review(_: Request) -> Response:
        return JSONResponse({"review": admin.listing(gw, "review")})

    async def quarantine(_: Request) -> Response:
        return JSONResponse({"quarantined": admin.listing(gw, "quarantined")})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/status.json", status),
            Route("/review.json", review),
            Route("/quarantine.json", quarantine),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            *console.routes(gw),
            *outlook.routes(gw),
            Mount("/static", StaticFiles(packages=[("gateway.web", "static")]), name="static"),
        ]
    )


def serve(gw: Any, listen: str, stop: Any) -> None:
    """Run the page until `stop` is set (called in its own thread by `Gateway.run`)."""
    import threading

    import uvicorn

    host, _, port = listen.rpartition(":")
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(gw),
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )

    def exit_when_stopped() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=exit_when_stopped, daemon=True).start()
    server.run()
