"""Prometheus metrics (``GET /metrics``): what happened since start, and the state of the queue.

Counters are updated where things happen; gauges about the database (deliveries by
state, due queue and its oldest item, seal lag, overdue documents) are read at scrape time.
Each application has its own registry, so several apps in one process do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from exchange.clock import today_in_vietnam
from exchange.store import chain as chain_store
from exchange.store import deliveries as delivery_store
from exchange.store import messages as message_store
from exchange.store.db import Connection

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("exchange_packages_accepted_total", "Packages accepted", ["kind"], registry=r)
        self.rejected = Counter(
            "exchange_packages_rejected_total", "Packages refused, by error code", ["reason"], registry=r
        )
        self.verdicts = Counter(
            "exchange_signature_verdicts_total",
            "Signature verdicts of accepted packages",
            ["verdict"],
            registry=r,
        )
        self.attachment_verdicts = Counter(
            "exchange_attachment_signature_verdicts_total",
            "Verdicts of the signatures inside attached PDFs of accepted packages",
            ["verdict"],
            registry=r,
        )
        self.official_documents = Counter(
            "exchange_official_documents_total",
            "Accepted documents whose main PDF is official (person and agency signatures valid), or not",
            ["official"],
            registry=r,
        )
        self.attempts = Counter(
            "exchange_delivery_attempts_total", "Push attempts by outcome", ["outcome"], registry=r
        )
        self.requests = Histogram(
            "exchange_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.limited = Counter(
            "exchange_limited_total",
            "Requests refused and connections closed by a resource limit, by reason",
            ["reason"],
            registry=r,
        )
        self.deliveries = Gauge("exchange_deliveries", "Deliveries by transport state", ["state"], registry=r)
        self.queue_depth = Gauge("exchange_delivery_queue_depth", "Push deliveries due now", registry=r)
        self.oldest_due = Gauge(
            "exchange_delivery_oldest_due_seconds", "Age of the oldest due push delivery", registry=r
        )
        self.seal_lag = Gauge(
            "exchange_audit_seal_lag_seconds", "Age of the oldest unsealed audit entry", registry=r
        )
        self.unsealed = Gauge("exchange_audit_unsealed_entries", "Audit entries not sealed yet", registry=r)
        self.overdue = Gauge(
            "exchange_documents_overdue", "Documents past their DueDate, not completed", registry=r
        )

    async def render(self, conn: Connection) -> bytes:
        """Refresh the gauges from the database and render everything in the text format."""
        counts = await delivery_store.count_by_state(conn)
        for state in delivery_store.STATES:
            self.deliveries.labels(state).set(counts.get(state, 0))
        depth, oldest = await delivery_store.due_queue(conn)
        self.queue_depth.set(depth)
        self.oldest_due.set(oldest)
        lag, unsealed = await chain_store.lag(conn)
        self.seal_lag.set(lag)
        self.unsealed.set(unsealed)
        self.overdue.set(await message_store.overdue_count(conn, today_in_vietnam()))
        data: bytes = generate_latest(self.registry)
        return data
