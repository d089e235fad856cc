"""Prometheus metrics of `/metrics`, computed from the ledger and the live sources at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway.admin.reconcile import FindingKind
from gateway.admin.reconcile import last_result as reconcile_result
from gateway.ledger import Ledger


class LedgerCollector:
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
        yield from _reconcile_gauges(self.gw.ledger)
        yield from _pimsync_metrics(self.gw)


def _pimsync_metrics(gw: Any) -> Iterator[Any]:
    """The contact sync's rounds and items per address book this gateway syncs (counted since
    it started), and the conflicts no person settled yet (from the ledger: every book)."""
    task = getattr(gw, "pimsync", None)
    if task is None:
        return
    rounds = CounterMetricFamily(
        "crm_gateway_pimsync_rounds", "Contact sync rounds by address book and outcome", labels=["book", "outcome"]
    )
    items = CounterMetricFamily(
        "crm_gateway_pimsync_items", "Cards and CRM records the contact sync wrote, by book and what", labels=["book", "what"]
    )
    for name, b in sorted(task.books.items()):
        rounds.add_metric([name, "ok"], b.rounds - b.failed_rounds)
        rounds.add_metric([name, "failed"], b.failed_rounds)
        for what, n in sorted(b.totals.items()):
            items.add_metric([name, what], n)
    yield rounds
    yield items
    conflicts = GaugeMetricFamily(
        "crm_gateway_pimsync_conflicts_open", "Contact sync conflicts no person settled yet", labels=["book"]
    )
    open_ = gw.ledger.pim().open_conflicts_by_book()
    for name in sorted(task.books):
        conflicts.add_metric([name], float(open_.get(name, 0)))
    yield conflicts


def _reconcile_gauges(ledger: Ledger) -> Iterator[GaugeMetricFamily]:
    """The last `reconcile`'s findings per kind and its age: nothing before the first run."""
    last = reconcile_result(ledger)
    if last is None:
        return
    counts, at = last
    findings = GaugeMetricFamily("crm_gateway_reconcile_findings", "Findings of the last reconcile, by kind", labels=["kind"])
    for kind in FindingKind:
        findings.add_metric([kind.value], float(counts.get(kind.value, 0)))
    yield findings
    age = (datetime.now(UTC) - at).total_seconds()
    yield GaugeMetricFamily("crm_gateway_reconcile_age_seconds", "Seconds since the last reconcile ran", value=age)


def registry_for(gw: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LedgerCollector(gw))
    return registry
