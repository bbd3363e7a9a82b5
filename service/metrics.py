"""Prometheus metrics of this process, in a registry of caseclock's own.

Counts that describe what the database now holds (events ingested, alerts enqueued) are
added only when their transaction commits, so a rolled-back group commit or a sweep that lost
a race never counts twice. Metrics are per process: scrape every replica (and every worker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

EVENTS_INGESTED = Counter(
    "caseclock_events_ingested",
    "Events stored (duplicates and conflicts not counted).",
    registry=REGISTRY,
)
ALERTS_ENQUEUED = Counter(
    "caseclock_alerts_enqueued",
    "Alerts recorded in the outbox, by type.",
    ["type"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "caseclock_webhook_deliveries",
    "Delivery attempts by outcome: succeeded, retrying, failed (gave up or disabled), "
    "superseded (another claim was current), withdrawn (the event log no longer supports "
    "the alert: never sent).",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "caseclock_webhook_delivery_latency_seconds",
    "Time from sending a delivery attempt to the receiver's response (or error).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
ALERT_TO_DELIVERY = Histogram(
    "caseclock_alert_delivery_seconds",
    "Time from an alert being raised to its successful delivery.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 7200, 36000),
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "caseclock_outbox_backlog",
    "Work waiting in the outbox at the last scrape: alerts not yet fanned out to "
    "subscriptions, and deliveries pending (due or waiting for a retry).",
    ["kind"],
    registry=REGISTRY,
)
SWEEP_DURATION = Histogram(
    "caseclock_sweep_duration_seconds",
    "Wall time of one alert sweep tick.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
    registry=REGISTRY,
)

_ON_COMMIT = "caseclock.on_commit"


def on_commit(session: AsyncSession, action: Callable[[], Any]) -> None:
    """Run `action` once the session's current transaction commits; drop it on rollback."""
    session.sync_session.info.setdefault(_ON_COMMIT, []).append(action)


def count_events_ingested(session: AsyncSession, count: int) -> None:
    if count:
        on_commit(session, lambda: EVENTS_INGESTED.inc(count))


def count_alerts_enqueued(session: AsyncSession, types: list[str]) -> None:
    def count() -> None:
        for alert_type in types:
            ALERTS_ENQUEUED.labels(alert_type).inc()

    if types:
        on_commit(session, count)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    for action in session.info.pop(_ON_COMMIT, []):
        action()


@event.listens_for(Session, "after_rollback")
def _drop_on_rollback(session: Session) -> None:
    session.info.pop(_ON_COMMIT, None)
