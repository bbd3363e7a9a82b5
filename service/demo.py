"""A realistic demo caseload for one local authority, posted through the ordinary ingest path.

Three area teams of children's social workers take about 800 referrals over nine months.
Most deadlines are met on time; a few overloaded workers carry more cases and their work
slips (late decisions, assessments and visits, reviews never booked), which is what the
dashboard exists to show. Everything is generated from a seed and `now`, so two runs with
the same arguments post the same events (the second as duplicates).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from service.domain.calendar import Calendar, Duration
from service.domain.events import Event
from service.store.db import SessionFactory, transaction
from service.store.ingest import ingest_events
from service.store.orgs import ruleset_of
from service.store.tables import Org

TEAMS = ("T-NORTH", "T-CENTRAL", "T-SOUTH")
WORKERS_PER_TEAM = (9, 8, 8)
OVERLOADED = frozenset({"W-04", "W-12", "W-21"})
HISTORY_DAYS = 270
_CASES_PER_TRANSACTION = 40


@dataclass(frozen=True, slots=True)
class DemoReport:
    org_id: str
    cases: int
    events: int
    created: int
    workers: int
    teams: int


def demo_staff() -> dict[str, str]:
    """Worker id -> team id: 25 workers in three teams."""
    staff: dict[str, str] = {}
    number = 1
    for team, size in zip(TEAMS, WORKERS_PER_TEAM, strict=True):
        for _ in range(size):
            staff[f"W-{number:02d}"] = team
            number += 1
    return staff


@dataclass
class _Journey:
    """One child's case, written event by event until the story reaches `now`."""

    rng: random.Random
    calendar: Calendar
    now: datetime
    case_id: str
    worker: str
    team: str
    slips: bool
    at: datetime
    events: list[Event] = field(default_factory=list)

    def office_time(self, day: date) -> datetime:
        minutes = self.rng.randint(9 * 60, 16 * 60 + 30)
        local = datetime.combine(day, time(minutes // 60, minutes % 60), self.calendar.timezone)
        return max(local, self.at + timedelta(minutes=5))

    def within(self, working_days: int, *, late_by: tuple[int, int] = (2, 8)) -> datetime:
        """A working day up to `working_days` ahead, or later when this worker's work slips."""
        days = self.rng.randint(max(0, working_days // 3), working_days)
        if self.rng.random() < (0.55 if self.slips else 0.05):
            days = working_days + self.rng.randint(*late_by)
        day = self.calendar.add(self.calendar.local_date(self.at), Duration(days, "working_days"))
        return self.office_time(day)

    def add(self, kind: str, when: datetime, **data: Any) -> bool:
        """Record an event; False once the story has caught up with today."""
        when = when.astimezone(self.now.tzinfo)
        if when > self.now:
            return False
        self.at = when
        first = not self.events
        self.events.append(
            Event(
                id=f"demo:{self.case_id}:{len(self.events):02d}",
                type=kind,
                case_id=self.case_id,
                occurred_at=when,
                worker_id=self.worker if first else None,
                team_id=self.team if first else None,
                data=data,
            )
        )
        return True

    def book_review(self, rule_id: str, due: date) -> bool:
        """Book the next review: early and in time, or (when slipping) late or not at all."""
        if self.slips and self.rng.random() < 0.5:
            return True
        offset = self.rng.randint(3, 15) if self.slips else -self.rng.randint(2, 12)
        scheduled_for = (
            self.calendar.add(due, Duration(offset, "working_days"))
            if offset > 0
            else (self.calendar.subtract(due, Duration(-offset, "working_days")))
        )
        booked = self.within(5)
        return self.add(
            "review_scheduled", booked, review=rule_id, scheduled_for=scheduled_for.isoformat()
        )


def _child_protection(j: _Journey) -> None:
    cal = j.calendar
    if not j.add("strategy_discussion_held", j.within(2)):
        return
    if not j.add("section47_started", j.at + timedelta(hours=1)):
        return
    if j.rng.random() < 0.2:
        j.add("section47_completed", j.within(10), outcome="no_conference")
        return
    if not j.add("icpc_held", j.within(14, late_by=(3, 12)), plan=True):
        return
    if not j.add("child_protection_plan_started", j.at + timedelta(hours=1)):
        return
    review_due = cal.add(cal.local_date(j.at), Duration(3, "months"))
    plan_end = j.at + timedelta(days=j.rng.randint(120, 330))
    if not j.add("core_group_held", j.within(10, late_by=(2, 10))):
        return
    next_visit = j.at
    while True:
        visit = j.within(10, late_by=(3, 15))
        if visit > plan_end:
            break
        if cal.local_date(visit) >= cal.subtract(review_due, Duration(15, "working_days")):
            if not j.book_review("cp-review", review_due):
                return
            held = j.office_time(review_due - timedelta(days=j.rng.randint(0, 10)))
            if j.slips and j.rng.random() < 0.5:
                held = j.office_time(
                    cal.add(review_due, Duration(j.rng.randint(3, 20), "working_days"))
                )
            if not j.add("cp_review_held", max(held, j.at + timedelta(minutes=5))):
                return
            review_due = cal.add(cal.local_date(j.at), Duration(6, "months"))
            continue
        if not j.add("child_visited", max(visit, next_visit)):
            return
        next_visit = j.at
    if j.add("child_protection_plan_ended", j.office_time(cal.local_date(plan_end))):
        j.add("case_closed", j.within(10))


def _looked_after(j: _Journey) -> None:
    cal = j.calendar
    if not j.add("became_looked_after", j.within(5)):
        return
    if not j.add("placement_started", j.at + timedelta(hours=2)):
        return
    review_due = cal.add(cal.local_date(j.at), Duration(20, "working_days"))
    reviews = ["3 months", "6 months"]
    if not j.add("child_visited", j.within(3, late_by=(3, 10))):
        return
    while True:
        gap = j.rng.randint(25, 40) if not j.slips else j.rng.randint(30, 60)
        visit = j.office_time(cal.local_date(j.at) + timedelta(days=gap))
        if cal.local_date(visit) >= review_due - timedelta(days=20):
            if not j.book_review("cla-review", review_due):
                return
            held = j.office_time(review_due - timedelta(days=j.rng.randint(0, 12)))
            if j.slips and j.rng.random() < 0.5:
                held = j.office_time(review_due + timedelta(days=j.rng.randint(3, 25)))
            if not j.add("cla_review_held", max(held, j.at + timedelta(minutes=5))):
                return
            months = int((reviews.pop(0) if reviews else "6 months").split()[0])
            review_due = cal.add(cal.local_date(j.at), Duration(months, "months"))
            continue
        if not j.add("child_visited", visit):
            return


def _journey(j: _Journey, referred: datetime) -> None:
    """Referral, decision, contact and assessment; then closure, protection or care."""
    rng = j.rng
    if not j.add("referral_received", referred):
        return
    outcome = rng.choices(["assessment", "early_help", "no_further_action"], weights=[76, 14, 10])[
        0
    ]
    if not j.add("referral_decision_made", j.within(1, late_by=(1, 4)), outcome=outcome):
        return
    if outcome != "assessment":
        j.add("case_closed", j.within(5))
        return
    if not j.add(rng.choice(["contact_made", "child_seen"]), j.within(2, late_by=(2, 6))):
        return
    if not j.add("assessment_started", j.at + timedelta(hours=3)):
        return
    completed = j.within(38, late_by=(10, 35))
    path = rng.choices(["close", "protection", "care", "support"], weights=[52, 25, 9, 14])[0]
    if path == "protection" and rng.random() < 0.6:
        # Most child protection enquiries start while the assessment is still open.
        _child_protection(j)
        j.add("assessment_completed", max(completed, j.at + timedelta(hours=1)))
        return
    if not j.add("assessment_completed", completed):
        return
    if path == "close":
        j.add("case_closed", j.within(10))
    elif path == "protection":
        _child_protection(j)
    elif path == "care":
        _looked_after(j)
    elif rng.random() < 0.5:
        task_due = j.calendar.add(j.calendar.local_date(j.at), Duration(20, "working_days"))
        if j.add("task_due", j.within(2), task_id=f"{j.case_id}-plan", due_at=task_due.isoformat()):
            done = j.office_time(task_due - timedelta(days=rng.randint(0, 10)))
            if j.slips:
                done = j.office_time(task_due + timedelta(days=rng.randint(2, 15)))
            j.add(
                "task_completed", max(done, j.at + timedelta(hours=1)), task_id=f"{j.case_id}-plan"
            )


def demo_events(
    calendar: Calendar, *, now: datetime, cases: int = 800, seed: int = 20261120
) -> list[list[Event]]:
    """Each case's event log; overloaded workers get about twice the referrals."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
    staff = demo_staff()
    weights = [2.2 if worker in OVERLOADED else 1.0 for worker in staff]
    logs = []
    for number in range(1, cases + 1):
        worker = rng.choices(list(staff), weights=weights)[0]
        referred_day = calendar.local_date(now) - timedelta(days=rng.uniform(1, HISTORY_DAYS))
        journey = _Journey(
            rng=rng,
            calendar=calendar,
            now=now,
            case_id=f"C-{number:04d}",
            worker=worker,
            team=staff[worker],
            slips=worker in OVERLOADED,
            at=now - timedelta(days=HISTORY_DAYS + 5),
        )
        while not calendar.is_working_day(referred_day):
            referred_day -= timedelta(days=1)
        _journey(journey, journey.office_time(referred_day))
        if journey.events:
            logs.append(journey.events)
    return logs


async def seed_demo(
    factory: SessionFactory, *, org_id: str, now: datetime, cases: int = 800, seed: int = 20261120
) -> DemoReport:
    """Post the demo caseload into `org_id` through ingest, a few dozen cases a transaction."""
    async with factory() as session:
        org = await session.get(Org, org_id)
    if org is None:
        raise LookupError(f"no organisation {org_id!r}")
    ruleset = ruleset_of(org)
    logs = demo_events(ruleset.calendar, now=now, cases=cases, seed=seed)
    created = total = 0
    for start in range(0, len(logs), _CASES_PER_TRANSACTION):
        batch = [e for log in logs[start : start + _CASES_PER_TRANSACTION] for e in log]
        async with transaction(factory) as session:
            outcomes = await ingest_events(session, org_id, ruleset, batch, now)
        total += len(batch)
        created += sum(o.status == "created" for o in outcomes)
    return DemoReport(
        org_id=org_id,
        cases=len(logs),
        events=total,
        created=created,
        workers=len(demo_staff()),
        teams=len(TEAMS),
    )
