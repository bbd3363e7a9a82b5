"""Annex A rows to caseclock events, as ``shared/ANNEX_A.md`` says; pure, no I/O.

Each event has the deterministic id ``annex-a:{child}:{type}:{date}`` and carries only what
the rules need: the Child Unique ID (the case), the date (00:00 local that day), the codes
the rules read (`outcome`, `sequence`) and ``source = "annex-a"``, which lets a ruleset leave
out rules the workbook cannot evidence. No other cell of a row is kept.

Events never carry the allocation: a later file that moves a child to another worker would
otherwise give the same event id different content. The allocation travels in one
``case_allocated`` event per child, dated the extraction day, which the import adds only when
it differs from the case's current one (see ``service/store/imports.py``).

Lists 6-9 hold only the latest review or visit. Those dates carry ``data.sequence = 2`` ("at
least the second of its chain; what came before is unknown"), so derivation reports the
next deadline and nothing before it (see ``service/domain/derive.py``). A latest looked-after
review inside the first-review window is the first review and carries no sequence: it meets
the first deadline, and the next is due 3 months later (regulation 33).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

from service.domain.calendar import Calendar, Duration
from service.domain.derive import SEQUENCE_KEY
from service.domain.events import Event
from service.domain.rules import Rule, Ruleset
from service.imports.annex_a import (
    AnnexARow,
    AnnexAWorkbook,
    AssessmentRow,
    CareLeaverRow,
    ChildInCareRow,
    ChildInNeedRow,
    ChildProtectionRow,
    ReferralRow,
    Rejection,
    Section47Row,
)

SOURCE = "annex-a"
SOURCE_KEY = "source"
# "At least the second of its chain": a latest-only date says nothing about the ones before.
LATEST_ONLY = 2
FIRST_CLA_REVIEW_WITHIN = Duration(20, "working_days")
EARLIEST_DATE = date(1900, 1, 1)
# Event ids are at most 200 characters: "annex-a:" + child + ":" + the longest type + ":" + date.
MAX_CHILD_ID = 150
MAX_ALLOCATION_ID = 200
_SAMPLE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# The 2019 template's heading of each field a row type holds, to name a cell in the report
# when the row no longer says how the file spelt it.
FIELD_HEADINGS: Mapping[str, str] = {
    "child_id": "Child Unique ID",
    "team_id": "Allocated Team",
    "worker_id": "Allocated Worker",
    "referral_date": "Date of referral",
    "referral_nfa": "Referral NFA?",
    "assessment_start": "Continuous Assessment Start Date",
    "assessment_authorised": "Continuous Assessment Date of Authorisation",
    "strategy_discussion": "Strategy discussion initiating Section 47 Enquiry Start Date",
    "icpc_unnecessary": "Was an Initial Child Protection Conference deemed unnecessary?",
    "icpc_date": "Date of Initial Child Protection Conference",
    "cin_start": "CIN Start Date",
    "last_seen": "Date Child Was Last Seen",
    "cin_closure": "CIN Closure Date",
    "cp_plan_start": "Child Protection Plan Start Date",
    "last_statutory_visit": "Date of the Last Statutory Visit",
    "latest_review_conference": "Date of latest review conference",
    "cp_plan_end": "Child Protection Plan End Date",
    "looked_after_start": "Date Started to be Looked After",
    "latest_statutory_review": "Date of Latest Statutory Review",
    "last_social_work_visit": "Date of Last Social Work Visit",
    "ceased_looked_after": "Date Ceased to be Looked After",
    "latest_placement_start": "Start Date of Most Recent Placement",
    "latest_pathway_plan_review": "Latest Pathway Plan Review Date",
}

# Every event type the import makes, with the codes it gives them: what `rules_not_evaluable`
# tries each rule against.
EVENT_SHAPES: tuple[tuple[str, Mapping[str, object]], ...] = (
    ("referral_received", {}),
    ("referral_decision_made", {"outcome": "no_further_action"}),
    ("assessment_started", {}),
    ("assessment_completed", {}),
    ("section47_started", {}),
    ("section47_completed", {"outcome": "no_conference"}),
    ("icpc_held", {}),
    ("child_visited", {SEQUENCE_KEY: LATEST_ONLY}),
    ("case_closed", {}),
    ("child_protection_plan_started", {}),
    ("cp_review_held", {SEQUENCE_KEY: LATEST_ONLY}),
    ("child_protection_plan_ended", {}),
    ("became_looked_after", {}),
    ("cla_review_held", {}),
    ("cla_review_held", {SEQUENCE_KEY: LATEST_ONLY}),
    ("placement_started", {}),
    ("ceased_looked_after", {}),
    ("pathway_plan_reviewed", {SEQUENCE_KEY: LATEST_ONLY}),
    ("case_allocated", {}),
)


@dataclass(frozen=True, slots=True)
class ImportedEvent:
    """An event and the cell that evidences it, so the report can count it against its list."""

    event: Event
    list_number: int
    sheet: str
    row: int
    column: str


@dataclass(frozen=True, slots=True)
class Allocation:
    """A child's allocation as the file gives it, and the row it was taken from."""

    child_id: str
    worker_id: str | None
    team_id: str | None
    list_number: int
    sheet: str
    row: int


@dataclass(frozen=True, slots=True)
class MappedWorkbook:
    """Events with unique ids (the first list to evidence one is credited with it), each
    child's allocation, and the rows refused here (on top of those the reader refused)."""

    events: tuple[ImportedEvent, ...]
    allocations: tuple[Allocation, ...]
    rejected: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class NotEvaluable:
    rule_id: str
    reason: str


def event_id(child_id: str, event_type: str, day: date) -> str:
    return f"{SOURCE}:{child_id}:{event_type}:{day.isoformat()}"


def allocation_event(allocation: Allocation, extracted_on: date, calendar: Calendar) -> Event:
    """The child's allocation as at the extraction day."""
    return Event(
        id=event_id(allocation.child_id, "case_allocated", extracted_on),
        type="case_allocated",
        case_id=allocation.child_id,
        occurred_at=calendar.start_of_day(extracted_on),
        worker_id=allocation.worker_id,
        team_id=allocation.team_id,
        data={SOURCE_KEY: SOURCE},
    )


def extraction_day(text: str | None, calendar: Calendar, now: datetime) -> date:
    """The extraction day: a plain date, not after today in the organisation's timezone.

    Raises ValueError with a message for the uploader.
    """
    today = calendar.local_date(now)
    text = (text or "").strip()
    if not text:
        return today
    try:
        # Only YYYY-MM-DD: fromisoformat would also take week dates such as 2026-W47-5.
        day = date.fromisoformat(text) if _PLAIN_DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError("must be a date, YYYY-MM-DD")
    if day > today:
        raise ValueError("is after today: a workbook cannot be extracted in the future")
    if day.year < EARLIEST_DATE.year:
        raise ValueError(f"must be in {EARLIEST_DATE.year} or later")
    return day


def map_workbook(workbook: AnnexAWorkbook, *, calendar: Calendar) -> MappedWorkbook:
    """The events a workbook evidences, every list's rows considered together."""
    rejected: list[Rejection] = []
    rows: list[tuple[int, AnnexARow]] = []
    # Lists in number order, so a referral evidenced by List 3 and List 4 counts for List 3
    # whatever order the sheets are in.
    for read in sorted(workbook.lists, key=lambda r: r.list_number):
        for row in read.rows:
            problem = _implausible(row)
            if problem is None:
                rows.append((read.list_number, row))
            else:
                rejected.append(problem)
    mapper = _Mapper(calendar, [row for _, row in rows])
    events: dict[str, ImportedEvent] = {}
    for list_number, row in rows:
        for field_name, event in mapper.events_of(row):
            events.setdefault(
                event.id,
                ImportedEvent(event, list_number, row.sheet, row.row, FIELD_HEADINGS[field_name]),
            )
    return MappedWorkbook(
        events=tuple(events.values()),
        allocations=tuple(_allocations(rows)),
        rejected=tuple(rejected),
    )


def rules_not_evaluable(ruleset: Ruleset) -> list[NotEvaluable]:
    """Rules that events from a case-management system open but imported ones do not.

    Worked out from the ruleset, so an organisation's own rules are judged the same way: a
    rule is listed when some event the import makes would open it without `source = annex-a`
    and does not with it.
    """
    found: list[NotEvaluable] = []
    for rule in ruleset.rules:
        excluded = sorted(
            {
                event_type
                for event_type, codes in EVENT_SHAPES
                if _opens(rule, event_type, codes)
                and not _opens(rule, event_type, {**codes, SOURCE_KEY: SOURCE})
            }
        )
        if excluded:
            met_by = " or ".join(dict.fromkeys(m.type for m in rule.met_by))
            found.append(
                NotEvaluable(
                    rule.id,
                    f"Annex A holds no {met_by} date to judge it by, so imported "
                    f"{' and '.join(excluded)} events do not open it "
                    f'(starts_on has unless = {{{SOURCE_KEY} = "{SOURCE}"}})',
                )
            )
    return found


def _opens(rule: Rule, event_type: str, data: Mapping[str, object]) -> bool:
    sample = Event("sample", event_type, "sample", _SAMPLE_TIME, data=data)
    return any(m.matches(sample) for m in rule.starts_on)


class _Mapper:
    """Turns one row into events, knowing the rest of the child's rows where a list needs them
    (an assessment's clock runs from the child's referral)."""

    def __init__(self, calendar: Calendar, rows: Iterable[AnnexARow]) -> None:
        self.calendar = calendar
        referrals: dict[str, list[date]] = {}
        cin_starts: dict[str, list[date]] = {}
        for row in rows:
            if isinstance(row, ReferralRow):
                referrals.setdefault(row.child_id, []).append(row.referral_date)
            elif isinstance(row, ChildInNeedRow):
                cin_starts.setdefault(row.child_id, []).append(row.cin_start)
        self.referrals = {child: sorted(days) for child, days in referrals.items()}
        self.cin_starts = {child: sorted(days) for child, days in cin_starts.items()}

    def events_of(self, row: AnnexARow) -> Iterator[tuple[str, Event]]:
        """(the field that evidences it, event) for each event the row evidences."""
        child = row.child_id
        if isinstance(row, ReferralRow):
            yield "referral_date", self.event(child, "referral_received", row.referral_date)
            if row.referral_nfa:
                # Annex A has no decision date: the referral's own day closes it with no
                # further action, which stops its assessment clock.
                yield (
                    "referral_nfa",
                    self.event(
                        child,
                        "referral_decision_made",
                        row.referral_date,
                        outcome="no_further_action",
                    ),
                )
        elif isinstance(row, AssessmentRow):
            referral = self.referral_before(child, row.assessment_start)
            yield "assessment_start", self.event(child, "referral_received", referral)
            yield "assessment_start", self.event(child, "assessment_started", row.assessment_start)
            if row.assessment_authorised is not None:
                yield (
                    "assessment_authorised",
                    self.event(child, "assessment_completed", row.assessment_authorised),
                )
        elif isinstance(row, Section47Row):
            yield (
                "strategy_discussion",
                self.event(child, "section47_started", row.strategy_discussion),
            )
            if row.icpc_unnecessary:
                # No date either: the enquiry's own start cancels the conference deadline.
                yield (
                    "icpc_unnecessary",
                    self.event(
                        child,
                        "section47_completed",
                        row.strategy_discussion,
                        outcome="no_conference",
                    ),
                )
            if row.icpc_date is not None:
                yield "icpc_date", self.event(child, "icpc_held", row.icpc_date)
        elif isinstance(row, ChildInNeedRow):
            if row.last_seen is not None:
                yield "last_seen", self.latest(child, "child_visited", row.last_seen)
            if row.cin_closure is not None:
                yield "cin_closure", self.event(child, "case_closed", row.cin_closure)
        elif isinstance(row, ChildProtectionRow):
            yield (
                "cp_plan_start",
                self.event(child, "child_protection_plan_started", row.cp_plan_start),
            )
            if row.last_statutory_visit is not None:
                yield (
                    "last_statutory_visit",
                    self.latest(child, "child_visited", row.last_statutory_visit),
                )
            if row.latest_review_conference is not None:
                yield (
                    "latest_review_conference",
                    self.latest(child, "cp_review_held", row.latest_review_conference),
                )
            if row.cp_plan_end is not None:
                yield (
                    "cp_plan_end",
                    self.event(child, "child_protection_plan_ended", row.cp_plan_end),
                )
        elif isinstance(row, ChildInCareRow):
            yield from self.in_care(row)
        elif isinstance(row, CareLeaverRow) and row.latest_pathway_plan_review is not None:
            yield (
                "latest_pathway_plan_review",
                self.latest(child, "pathway_plan_reviewed", row.latest_pathway_plan_review),
            )

    def in_care(self, row: ChildInCareRow) -> Iterator[tuple[str, Event]]:
        child, start = row.child_id, row.looked_after_start
        yield "looked_after_start", self.event(child, "became_looked_after", start)
        review = row.latest_statutory_review
        if review is not None:
            first_window_ends = self.calendar.add(start, FIRST_CLA_REVIEW_WITHIN)
            if start <= review <= first_window_ends:
                yield "latest_statutory_review", self.event(child, "cla_review_held", review)
            else:
                yield "latest_statutory_review", self.latest(child, "cla_review_held", review)
        if row.last_social_work_visit is not None:
            yield (
                "last_social_work_visit",
                self.latest(child, "child_visited", row.last_social_work_visit),
            )
        if row.latest_placement_start is not None:
            yield (
                "latest_placement_start",
                self.event(child, "placement_started", row.latest_placement_start),
            )
        if row.ceased_looked_after is not None:
            yield (
                "ceased_looked_after",
                self.event(child, "ceased_looked_after", row.ceased_looked_after),
            )

    def referral_before(self, child: str, assessment_start: date) -> date:
        """The day an assessment's 45 working days run from: the child's latest List 3
        referral on or before its start; else the CIN start (Ofsted's referral date); else
        the start itself."""
        for days in (self.referrals.get(child, []), self.cin_starts.get(child, [])):
            index = bisect_right(days, assessment_start)
            if index:
                return days[index - 1]
        return assessment_start

    def event(self, child: str, event_type: str, day: date, **codes: object) -> Event:
        return Event(
            id=event_id(child, event_type, day),
            type=event_type,
            case_id=child,
            occurred_at=self.calendar.start_of_day(day),
            data={**codes, SOURCE_KEY: SOURCE},
        )

    def latest(self, child: str, event_type: str, day: date) -> Event:
        """A latest-only date: at least the second of its chain."""
        return self.event(child, event_type, day, **{SEQUENCE_KEY: LATEST_ONLY})


def _implausible(row: AnnexARow) -> Rejection | None:
    """What the reader accepts but caseclock cannot store or count from."""
    values: dict[str, Any] = {f.name: getattr(row, f.name) for f in fields(row)}
    for name, value in values.items():
        if isinstance(value, date) and value < EARLIEST_DATE:
            return _rejection(row, name, value.isoformat(), "date before 1900")
    if len(row.child_id) > MAX_CHILD_ID:
        return _rejection(
            row, "child_id", row.child_id[:40], f"longer than {MAX_CHILD_ID} characters"
        )
    for name in ("team_id", "worker_id"):
        value = values[name]
        if value is not None and len(value) > MAX_ALLOCATION_ID:
            return _rejection(row, name, value[:40], f"longer than {MAX_ALLOCATION_ID} characters")
    return None


def _rejection(row: AnnexARow, field_name: str, value: str, detail: str) -> Rejection:
    return Rejection(row.sheet, row.row, FIELD_HEADINGS[field_name], value, detail)


def _allocations(rows: Iterable[tuple[int, AnnexARow]]) -> Iterator[Allocation]:
    """Each child's allocation from one row: the highest-numbered list that names one (lists
    6-9 describe the child now), and in it the row with the latest date."""
    best: dict[str, tuple[tuple[int, date, int], AnnexARow, int]] = {}
    for list_number, row in rows:
        if row.worker_id is None and row.team_id is None:
            continue
        rank = (list_number, _main_date(row), row.row)
        held = best.get(row.child_id)
        if held is None or rank > held[0]:
            best[row.child_id] = (rank, row, list_number)
    for _, row, list_number in best.values():
        yield Allocation(row.child_id, row.worker_id, row.team_id, list_number, row.sheet, row.row)


def _main_date(row: AnnexARow) -> date:
    """A row's first date field: its list's defining date (a referral's, a plan's start)."""
    for value in (getattr(row, f.name) for f in fields(row)):
        if isinstance(value, date):
            return value
    return date.min


# What identifies each list caseclock reads, for telling an uploader what was expected.
EXPECTED_HEADINGS: Mapping[int, tuple[str, ...]] = {
    3: ("Child Unique ID", "Date of referral", "Referral NFA?"),
    4: ("Child Unique ID", "Continuous Assessment Start Date"),
    5: ("Child Unique ID", "Strategy discussion initiating Section 47 Enquiry Start Date"),
    6: ("Child Unique ID", "CIN Start Date"),
    7: ("Child Unique ID", "Child Protection Plan Start Date"),
    8: ("Child Unique ID", "Date Started to be Looked After"),
    9: ("Child Unique ID", "Eligibility Category"),
}
