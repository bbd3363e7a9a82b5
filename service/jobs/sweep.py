"""The alert sweep: obligations whose state changes with the mere passing of time.

Events raise their alerts as they are ingested; what no event announces (a deadline slipping,
an escalation threshold passing, due-soon starting) is found here. Every obligation stores
the next instant its alerts can change (`next_check_at`), so a tick reads only the rows whose
instant has come: an idle tick is one empty index range scan, whatever the number of open
obligations. For each such row the sweep records what it owes now and moves the instant on,
in one transaction, batch by batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from service.domain.alerts import next_check_at
from service.metrics import SWEEP_DURATION
from service.store.alerts import Subject, claim_due_checks, enqueue_owed, move_checks
from service.store.db import SessionFactory, transaction
from service.store.obligations import from_row
from service.store.orgs import rulesets_of

log = logging.getLogger("caseclock.jobs.sweep")
BATCH_SIZE = 1000
MAX_BATCHES = 1000  # 1,000,000 checks a tick; the rest wait for the next one


@dataclass(frozen=True, slots=True)
class SweepResult:
    checked: int
    enqueued: int
    seconds: float


async def sweep(
    factory: SessionFactory,
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
    on_enqueued: Callable[[int], None] | None = None,
) -> SweepResult:
    """Record every alert owed at `now` by obligations whose check time has come.

    `on_enqueued` hears of each committed batch that raised alerts, so delivery can start
    on them while the sweep goes on.
    """
    started = time.perf_counter()
    checked = enqueued = 0
    for _ in range(max_batches):
        async with transaction(factory) as session:
            rows = await claim_due_checks(session, now, batch_size)
            if not rows:
                break
            rulesets = await rulesets_of(session, (row.org_id for row in rows))
            by_org: dict[str, list[Subject]] = {}
            moves: list[tuple[str, str, datetime | None]] = []
            for row in rows:
                stored = from_row(row)
                ob = stored.obligation
                by_org.setdefault(row.org_id, []).append(
                    Subject(ob, stored.rule_name, stored.worker_id, stored.team_id)
                )
                moves.append((row.org_id, ob.id, next_check_at(ob, now)))
            raised = 0
            for org_id, subjects in by_org.items():
                raised += await enqueue_owed(
                    session, org_id, rulesets[org_id], subjects, now, settles=False
                )
            await move_checks(session, moves)
        checked += len(rows)
        enqueued += raised
        if raised and on_enqueued is not None:
            on_enqueued(raised)
        if len(rows) < batch_size:
            break
    seconds = time.perf_counter() - started
    SWEEP_DURATION.observe(seconds)
    if checked:
        log.info(
            "sweep checked %d obligations and enqueued %d alerts in %.3fs",
            checked,
            enqueued,
            seconds,
        )
    return SweepResult(checked, enqueued, seconds)
