"""When a case counts in a worker's caseload: the periods it is open, each with the worker and
team it is allocated to, so "open cases at T" is a question of which period holds T.

A case opens with its first event, closes with `case_closed` and opens again with
`case_reopened`; its allocation is the latest worker and team any event named. A manager
counts a caseload as the open cases allocated to a worker, whether or not a deadline is
running on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from service.domain.events import Event


@dataclass(frozen=True, slots=True)
class OpenPeriod:
    """The case is open and allocated to `worker_id` / `team_id` from `starts_at` (included)
    until `ends_at` (excluded; None while it lasts)."""

    starts_at: datetime
    ends_at: datetime | None
    worker_id: str | None
    team_id: str | None


def open_periods(log: Sequence[Event]) -> tuple[OpenPeriod, ...]:
    """The case's open periods, from its non-void events in log order."""
    periods: list[OpenPeriod] = []
    worker_id: str | None = None
    team_id: str | None = None
    opened_at: datetime | None = None  # start of the period under way, None while closed
    for event in log:
        worker = event.worker_id or worker_id
        team = event.team_id or team_id
        at = event.occurred_at
        if opened_at is None:
            if not periods or event.type == "case_reopened":
                opened_at = at
        elif (worker, team) != (worker_id, team_id) and at > opened_at:
            periods.append(OpenPeriod(opened_at, at, worker_id, team_id))
            opened_at = at
        worker_id, team_id = worker, team
        if event.type == "case_closed" and opened_at is not None:
            periods.append(OpenPeriod(opened_at, at, worker_id, team_id))
            opened_at = None
    if opened_at is not None:
        periods.append(OpenPeriod(opened_at, None, worker_id, team_id))
    return tuple(periods)
