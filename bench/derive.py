"""Derivation time of one long-running case with 500 events; prints JSON.

The case is a child on a protection plan for years, then looked after: visits every couple
of weeks, core groups, reviews with bookings, placements, tasks and a few re-referrals.

    .venv/bin/python -m bench.derive [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from service.domain.derive import derive_case
from service.domain.events import Event
from service.domain.rules import builtin_ruleset


def long_case(size: int = 500, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    at = datetime(2019, 1, 7, 9, tzinfo=UTC)
    events: list[Event] = []

    def add(event_type: str, **data: object) -> None:
        events.append(Event(f"e{len(events):04d}", event_type, "C-LONG", at, "W-1", "T-1", data))

    add("referral_received")
    add("referral_decision_made", outcome="strategy_discussion")
    add("section47_started")
    at += timedelta(days=12)
    add("icpc_held", plan=True)
    add("child_protection_plan_started")
    while len(events) < size:
        at += timedelta(days=rng.uniform(8, 16))
        roll = rng.random()
        if roll < 0.55:
            add("child_visited")
        elif roll < 0.70:
            add("core_group_held")
        elif roll < 0.78:
            add(
                "review_scheduled",
                review="cp-review",
                scheduled_for=(at + timedelta(days=40)).date().isoformat(),
            )
        elif roll < 0.84:
            add("cp_review_held")
        elif roll < 0.90:
            add(
                "task_due",
                task_id=f"t{len(events)}",
                due_at=(at + timedelta(days=10)).date().isoformat(),
            )
        elif roll < 0.95:
            add("task_completed", task_id=f"t{len(events) - 1}")
        elif roll < 0.97:
            add("placement_started")
        elif roll < 0.98:
            add("referral_received")
        else:
            add("contact_made")
    rng.shuffle(events)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    ruleset = builtin_ruleset("england-children")
    events = long_case(args.events)
    state = derive_case("C-LONG", events, ruleset)  # warm the calendar's caches
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        for _ in range(20):
            derive_case("C-LONG", events, ruleset)
        timings.append((time.perf_counter() - started) / 20 * 1000)
    print(
        json.dumps(
            {
                "events": len(events),
                "obligations": len(state.obligations),
                "median_ms": round(statistics.median(timings), 3),
                "runs_ms": [round(t, 3) for t in timings],
                "target_ms": 5,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
