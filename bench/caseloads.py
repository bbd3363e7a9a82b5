"""Realistic synthetic caseloads for benchmarks and demos: about ten events per case."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]


def case_events(
    case_id: str, start: datetime, rng: random.Random, *, worker: str, team: str
) -> list[Event]:
    """A child's journey from referral, through assessment, often into child protection."""
    events: list[Event] = []
    at = start

    def add(event_type: str, days: float, **data: Any) -> None:
        nonlocal at
        at += timedelta(days=days, minutes=rng.randint(0, 600))
        events.append(
            {
                "id": f"{case_id}-{len(events):02d}",
                "type": event_type,
                "case_id": case_id,
                "occurred_at": at.isoformat().replace("+00:00", "Z"),
                "worker_id": worker,
                "team_id": team,
                "data": data,
            }
        )

    add("referral_received", 0)
    add("referral_decision_made", rng.uniform(0, 2), outcome="assessment")
    add("contact_made", rng.uniform(0, 3))
    add("assessment_started", rng.uniform(0, 3))
    add("child_seen", rng.uniform(1, 5))
    if rng.random() < 0.5:
        add("strategy_discussion_held", rng.uniform(1, 5))
        add("section47_started", 0.01)
        add("icpc_held", rng.uniform(10, 25), plan=True)
        add("child_protection_plan_started", 0.01)
        add("core_group_held", rng.uniform(5, 14))
    else:
        add("assessment_completed", rng.uniform(20, 60))
        add("child_visited", rng.uniform(5, 20))
        add(
            "task_due",
            1,
            task_id=f"{case_id}-t1",
            due_at=(at + timedelta(days=14)).date().isoformat(),
        )
        add("task_completed", rng.uniform(3, 20), task_id=f"{case_id}-t1")
    add("child_visited", rng.uniform(5, 15))
    return events


def caseload(
    cases: int, *, seed: int = 7, prefix: str = "C", workers: int = 50, now: datetime | None = None
) -> Iterator[list[Event]]:
    """`cases` case logs, each ending before `now` (default: a fixed instant in 2026)."""
    rng = random.Random(seed)
    end = now or datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(cases):
        worker = rng.randrange(workers)
        start = end - timedelta(days=rng.uniform(120, 270))
        yield case_events(
            f"{prefix}{n:07d}", start, rng, worker=f"W-{worker:04d}", team=f"T-{worker % 5}"
        )
