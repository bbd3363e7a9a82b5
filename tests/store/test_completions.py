"""The daily completions rollup is written by the write path itself, as its last step: it
follows single events, batches and rules changes, and a write that does not commit leaves
no trace in it.

Referral decisions are due within one working day of the referral (Working Together to
Safeguard Children 2023); November 2026 has no bank holiday in England.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from conftest import Tenant
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from service.domain.rules import builtin_ruleset_text
from service.store.db import transaction
from service.store.tables import daily_completions

RULE = "referral-decision"
DECIDED_ON = date(2026, 11, 5)  # Thursday: two working days after Monday's referral


def referral(case_id: str, team: str = "T-1") -> dict[str, Any]:
    return {
        "id": f"{case_id}-ref",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-02T10:00:00Z",  # Monday 2 November
        "worker_id": "W-1",
        "team_id": team,
    }


def decision(case_id: str) -> dict[str, Any]:
    return {
        "id": f"{case_id}-decision",
        "type": "referral_decision_made",
        "case_id": case_id,
        "occurred_at": "2026-11-05T10:00:00Z",
        "data": {"outcome": "assessment"},
    }


async def rollup(app: FastAPI, org_id: str) -> dict[tuple[str, date], tuple[int, int]]:
    """(team, day) -> (completed, on time) of the referral decisions, rows that count anything."""
    async with transaction(app.state.session_factory) as session:
        rows = await session.execute(
            select(
                daily_completions.c.team_id,
                daily_completions.c.day,
                daily_completions.c.completed,
                daily_completions.c.on_time,
            ).where(daily_completions.c.org_id == org_id, daily_completions.c.rule_id == RULE)
        )
        return {(r.team_id, r.day): (r.completed, r.on_time) for r in rows if r.completed}


@contextmanager
def commits_fail(app: FastAPI) -> Iterator[None]:
    """Every commit fails as a lost connection makes it fail, so every transaction rolls back."""

    def lost(_connection: Any) -> None:
        raise OperationalError("COMMIT", None, ConnectionError("the connection was lost"))

    engine = app.state.engine.sync_engine
    event.listen(engine, "commit", lost)
    try:
        yield
    finally:
        event.remove(engine, "commit", lost)


async def test_a_decision_posted_alone_is_counted_once_for_the_org_and_its_team(
    app: FastAPI, tenant: Tenant
) -> None:
    for item in (referral("C-1"), decision("C-1")):
        response = await tenant.writer.post("/v1/events", json=item)
        assert response.status_code == 201, response.text
    late = (1, 0)
    assert await rollup(app, tenant.org_id) == {("", DECIDED_ON): late, ("T-1", DECIDED_ON): late}


async def test_a_rules_change_that_makes_a_late_decision_timely_counts_it_on_time(
    app: FastAPI, tenant: Tenant
) -> None:
    response = await tenant.writer.post(
        "/v1/events/batch", json={"events": [referral("C-1"), decision("C-1")]}
    )
    assert response.status_code == 200, response.text
    text = builtin_ruleset_text("england-children").replace(
        'due = "1 working day"\nmet_by = ["referral_decision_made"]',
        'due = "5 working days"\nmet_by = ["referral_decision_made"]',
    )
    response = await tenant.admin.put(
        "/v1/rules", content=text, headers={"Content-Type": "application/toml"}
    )
    await tenant.activate(response)
    on_time = (1, 1)
    assert await rollup(app, tenant.org_id) == {
        ("", DECIDED_ON): on_time,
        ("T-1", DECIDED_ON): on_time,
    }


async def test_a_write_that_fails_to_commit_leaves_the_rollup_as_it_was(
    app: FastAPI, tenant: Tenant
) -> None:
    batch = {"events": [referral("C-1"), decision("C-1")]}
    with commits_fail(app):
        response = await tenant.writer.post("/v1/events/batch", json=batch)
    assert response.status_code == 503, response.text
    assert await rollup(app, tenant.org_id) == {}
    response = await tenant.writer.post("/v1/events/batch", json=batch)
    assert response.status_code == 200, response.text
    late = (1, 0)
    assert await rollup(app, tenant.org_id) == {("", DECIDED_ON): late, ("T-1", DECIDED_ON): late}
