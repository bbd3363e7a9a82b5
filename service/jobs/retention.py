"""The retention job: prune the delivery log older than the retention period, a small batch
per transaction, until nothing is left to prune or the run's budget is spent."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.store.db import SessionFactory, transaction
from service.store.retention import prune_batch

log = logging.getLogger("caseclock.jobs.retention")
BATCH = 1000
RUN_BUDGET_SECONDS = 60.0


@dataclass(slots=True)
class RetentionRun:
    deliveries: int = 0
    alerts: int = 0


async def prune_history(
    factory: SessionFactory,
    *,
    now: datetime,
    keep: timedelta,
    batch: int = BATCH,
    budget_seconds: float = RUN_BUDGET_SECONDS,
) -> RetentionRun:
    """Prune what is older than `keep`; the next run goes on where a spent budget stopped."""
    run = RetentionRun()
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        async with transaction(factory) as session:
            pruned = await prune_batch(session, before=now - keep, limit=batch)
        run.deliveries += pruned.deliveries
        run.alerts += pruned.alerts
        if pruned.deliveries < batch and pruned.alerts < batch:
            break
        await asyncio.sleep(0)  # let requests in between batches
    if run.deliveries or run.alerts:
        log.info("retention: %d deliveries deleted, %d alerts pruned", run.deliveries, run.alerts)
    return run
