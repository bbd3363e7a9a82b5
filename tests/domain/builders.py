"""Terse construction of case logs for domain tests: local London days, built-in rulesets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from service.domain.derive import Obligation, derive_case
from service.domain.events import Event
from service.domain.rules import Ruleset, builtin_ruleset, load_ruleset

LONDON = ZoneInfo("Europe/London")
CHILDREN = builtin_ruleset("england-children")
ADULTS = builtin_ruleset("england-adults")
CASE_ID = "C-1"
# A ruleset of one repeating rule whose chains are kept apart by plan (`correlate_on`).
PLAN_REVIEWS = load_ruleset(
    """\
[[rules]]
id = "plan-review"
name = "Each plan reviewed every 4 weeks"
source = "Local"
starts_on = ["care_plan_agreed"]
due = "4 weeks"
met_by = ["care_plan_reviewed"]
repeat = ["4 weeks"]
correlate_on = "plan_id"
"""
)


def day(text: str) -> date:
    return date.fromisoformat(text)


def local(text: str, clock: str = "00:00") -> datetime:
    """An instant given as a London wall-clock time, returned in UTC."""
    return datetime.combine(day(text), time.fromisoformat(clock), tzinfo=LONDON).astimezone(UTC)


def end_of(text: str) -> datetime:
    """The last microsecond of a London day: when a deadline on that day falls due."""
    return CHILDREN.calendar.end_of_day(day(text))


def event(
    type: str,
    when: str | datetime,
    *,
    id: str | None = None,
    case_id: str = CASE_ID,
    worker_id: str | None = None,
    team_id: str | None = None,
    **data: Any,
) -> Event:
    """An event at 00:00 London on a day (`"2026-03-02"`) or at an exact instant."""
    occurred_at = local(when) if isinstance(when, str) else when
    return Event(
        id=id or f"{type}@{occurred_at.isoformat()}",
        type=type,
        case_id=case_id,
        occurred_at=occurred_at,
        worker_id=worker_id,
        team_id=team_id,
        data=data,
    )


def derive(events: list[Event], ruleset: Ruleset = CHILDREN) -> tuple[Obligation, ...]:
    return derive_case(CASE_ID, events, ruleset).obligations


def of_rule(obligations: tuple[Obligation, ...], rule_id: str) -> list[Obligation]:
    """One rule's obligations in the order they opened."""
    found = [o for o in obligations if o.rule_id == rule_id]
    return sorted(found, key=lambda o: (o.opened_at, o.sequence, o.id))


def only(obligations: tuple[Obligation, ...], rule_id: str) -> Obligation:
    """The single obligation of a rule; fails loudly when there is not exactly one."""
    found = of_rule(obligations, rule_id)
    assert len(found) == 1, f"expected one {rule_id} obligation, got {len(found)}"
    return found[0]


def assert_matches_spec_row(ruleset: Ruleset, rule_id: str, row: tuple[Any, ...]) -> None:
    """A built-in rule written out equals its row of docs/rules.md's built-in timescales."""
    starts_on, due, met_by, repeat, cancelled_by, restart, source = row
    rule = ruleset.rule(rule_id)
    assert rule is not None
    written = rule.to_json()
    assert written["starts_on"] == starts_on
    assert written["due"] == due
    assert written["met_by"] == met_by
    assert written.get("repeat", []) == repeat
    assert written["cancelled_by"] == cancelled_by
    assert written["restart"] == restart
    assert rule.name.strip()
    for fragment in source:
        assert fragment.lower() in rule.source.lower()
