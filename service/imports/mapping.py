"""Annex A rows to caseclock events, as docs/imports.md, "From rows to events", says; pure, no I/O.

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

What the workbook cannot show is never judged from it. A list without one of its columns, or a
cell that cannot be read, says nothing of what that column or cell would have evidenced; and a
latest date says that nothing later happened up to the extraction day. Both go into one
``snapshot_taken`` event per child and extraction day, made only when it has something to say
(``data.unseen``: the event types it could not show for the child; ``data.latest``: the latest
days that prove a deadline missed). Derivation then leaves unjudged what the snapshot could not
see, and keeps a miss it proved when a later extract shows only a later date (see
``service/domain/derive.py``). Missing lists, missing columns and unreadable cells are each
reported with the rules they leave unjudged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from typing import Any

from service.domain.calendar import Calendar, Duration
from service.domain.derive import (
    LATEST_KEY,
    SEQUENCE_KEY,
    SNAPSHOT_TYPE,
    UNSEEN_KEY,
)
from service.domain.events import Event, parse_plain_date
from service.domain.rules import Rule, Ruleset
from service.domain.storable import text_fault
from service.imports.annex_a import (
    LIST_FIELDS,
    LIST_TITLES,
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
# Types the import gives only the latest day of: a snapshot's `latest` speaks of these.
LATEST_ONLY_TYPES = frozenset(t for t, codes in EVENT_SHAPES if SEQUENCE_KEY in codes)

# The event types each field of a row makes: what stays unknown for a child whose cell cannot
# be read, or for a list's children when the list lacks the column. A CIN start only dates an
# assessment's referral when List 3 has none, so without it the clock runs from the
# assessment's start instead.
FIELD_EVENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "child_id": (),
    "team_id": ("case_allocated",),
    "worker_id": ("case_allocated",),
    "referral_date": ("referral_received",),
    "referral_nfa": ("referral_decision_made",),
    "assessment_start": ("referral_received", "assessment_started"),
    "assessment_authorised": ("assessment_completed",),
    "strategy_discussion": ("section47_started",),
    "icpc_unnecessary": ("section47_completed",),
    "icpc_date": ("icpc_held",),
    "cin_start": (),
    "last_seen": ("child_visited",),
    "cin_closure": ("case_closed",),
    "cp_plan_start": ("child_protection_plan_started",),
    "last_statutory_visit": ("child_visited",),
    "latest_review_conference": ("cp_review_held",),
    "cp_plan_end": ("child_protection_plan_ended",),
    "looked_after_start": ("became_looked_after",),
    "latest_statutory_review": ("cla_review_held",),
    "last_social_work_visit": ("child_visited",),
    "ceased_looked_after": ("ceased_looked_after",),
    "latest_placement_start": ("placement_started",),
    "latest_pathway_plan_review": ("pathway_plan_reviewed",),
}
# Fields whose events take their day from another field's (a yes/no has no date of its own):
# when that field cannot be read, a "yes" makes no event either.
DATED_BY: Mapping[str, str] = {
    "referral_nfa": "referral_date",
    "icpc_unnecessary": "strategy_discussion",
}


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
class MissingList:
    """A tracked list the workbook lacks, and the rules it would have fed."""

    list_number: int
    title: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MissingColumn:
    """A column a recognised list lacks (absent, or renamed beyond recognition), named by its
    2019 template heading, and the rules it leaves unjudged for that list's children."""

    list_number: int
    sheet: str
    column: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MappedWorkbook:
    """Events with unique ids (the first list to evidence one is credited with it), each
    child's allocation, every cell that could not be used (the reader's and those refused
    here) with the rules it leaves unjudged, and the lists and columns the workbook lacks."""

    events: tuple[ImportedEvent, ...]
    allocations: tuple[Allocation, ...]
    rejected: tuple[Rejection, ...]
    missing_lists: tuple[MissingList, ...]
    missing_columns: tuple[MissingColumn, ...]


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
    day = parse_plain_date(text)
    if day is None:
        raise ValueError("must be a date, YYYY-MM-DD")
    if day > today:
        raise ValueError("is after today: a workbook cannot be extracted in the future")
    if day.year < EARLIEST_DATE.year:
        raise ValueError(f"must be in {EARLIEST_DATE.year} or later")
    return day


def map_workbook(workbook: AnnexAWorkbook, *, ruleset: Ruleset) -> MappedWorkbook:
    """The events a workbook evidences, every list's rows considered together, and what it
    cannot evidence: the lists and columns it lacks and the cells it could not read."""
    feeds = _Feeds(ruleset)
    rejected = list(workbook.rejected)
    rows: list[tuple[int, AnnexARow]] = []
    # Lists in number order, so a referral evidenced by List 3 and List 4 counts for List 3
    # whatever order the sheets are in.
    for read in sorted(workbook.lists, key=lambda r: r.list_number):
        for row in read.rows:
            kept, problems = _plausible(row)
            rejected += problems
            if kept is not None:
                rows.append((read.list_number, kept))
    mapper = _Mapper(ruleset.calendar, [row for _, row in rows])
    events: dict[str, ImportedEvent] = {}
    for list_number, row in rows:
        for field_name, event in mapper.events_of(row):
            events.setdefault(
                event.id,
                ImportedEvent(event, list_number, row.sheet, row.row, FIELD_HEADINGS[field_name]),
            )
    # Each unusable cell with the rules it leaves unjudged for its row's child; a row left
    # out has no child to judge anything for.
    by_cell = {(row.sheet, row.row): row for _, row in rows}
    cells: list[Rejection] = []
    unknown: list[tuple[str, set[str]]] = []
    for rejection in rejected:
        cell_row = by_cell.get((rejection.sheet, rejection.row))
        if cell_row is None:
            cells.append(rejection)
            continue
        types = _types_unknown(cell_row, rejection)
        unknown.append((cell_row.child_id, types))
        cells.append(replace(rejection, rules=feeds.rules(types)))
    unseen = _unseen(workbook, rows, unknown, feeds.evidence)
    snapshots = _snapshots(ruleset, workbook, rows, list(events.values()), unseen)
    present = {read.list_number for read in workbook.lists}
    return MappedWorkbook(
        events=(*events.values(), *snapshots),
        allocations=tuple(_allocations(rows)),
        rejected=tuple(cells),
        missing_lists=tuple(
            MissingList(
                number,
                title,
                feeds.rules(t for f in LIST_FIELDS[number] for t in FIELD_EVENT_TYPES[f]),
            )
            for number, title in LIST_TITLES.items()
            if number not in present
        ),
        missing_columns=tuple(
            MissingColumn(
                read.list_number, read.sheet, FIELD_HEADINGS[f], feeds.rules(FIELD_EVENT_TYPES[f])
            )
            for read in workbook.lists
            for f in read.missing_fields
        ),
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


class _Feeds:
    """Which rules the events the import makes would open, meet or cancel, among the rules
    imported events can open at all: what a missing list or column, or an unreadable cell,
    leaves unjudged. Worked out from the ruleset, like `rules_not_evaluable`."""

    def __init__(self, ruleset: Ruleset) -> None:
        samples = [
            Event("sample", t, "sample", _SAMPLE_TIME, data={**codes, SOURCE_KEY: SOURCE})
            for t, codes in EVENT_SHAPES
        ]
        self.order = [rule.id for rule in ruleset.rules]
        self.by_type: dict[str, set[str]] = {}
        for rule in ruleset.rules:
            if not any(m.matches(s) for s in samples for m in rule.starts_on):
                continue
            matchers = (*rule.starts_on, *rule.met_by, *rule.cancelled_by)
            for sample in samples:
                if any(m.matches(sample) for m in matchers):
                    self.by_type.setdefault(sample.type, set()).add(rule.id)
        # Types that meet or cancel some rule: what a snapshot must say it could not see.
        self.evidence = frozenset(
            m.type for rule in ruleset.rules for m in (*rule.met_by, *rule.cancelled_by)
        )

    def rules(self, event_types: Iterable[str]) -> tuple[str, ...]:
        """Rule ids in ruleset order."""
        fed = set().union(*(self.by_type.get(t, set()) for t in event_types))
        return tuple(rule_id for rule_id in self.order if rule_id in fed)


def _types_unknown(row: AnnexARow, rejection: Rejection) -> set[str]:
    """The event types a kept row's unusable cell could have made: its field's own, and those
    of a "yes" that would have taken its day from the cell."""
    if rejection.field is None:
        return set()
    return {
        event_type
        for name in (rejection.field, *(n for n, by in DATED_BY.items() if by == rejection.field))
        if name == rejection.field or getattr(row, name)
        for event_type in FIELD_EVENT_TYPES[name]
    }


def _unseen(
    workbook: AnnexAWorkbook,
    rows: Iterable[tuple[int, AnnexARow]],
    unknown: Iterable[tuple[str, set[str]]],
    evidence: frozenset[str],
) -> dict[str, frozenset[str]]:
    """Each child's event types the workbook could not show that meet or cancel a rule: those
    of the columns its lists lack, and those its unusable cells could have made."""
    missing = {read.sheet: read.missing_fields for read in workbook.lists}
    unseen: dict[str, set[str]] = {}
    for _, row in rows:
        for name in missing[row.sheet]:
            unseen.setdefault(row.child_id, set()).update(FIELD_EVENT_TYPES[name])
    for child, types in unknown:
        unseen.setdefault(child, set()).update(types)
    found = {child: frozenset(types & evidence) for child, types in unseen.items()}
    return {child: types for child, types in found.items() if types}


def _shown_in_full(workbook: AnnexAWorkbook) -> frozenset[str]:
    """The latest-only types that every list able to show them has, with the column: a
    child's latest day of one of them is then the workbook's latest day of it."""
    reads = {n: [r for r in workbook.lists if r.list_number == n] for n in LIST_FIELDS}
    return frozenset(
        event_type
        for event_type in LATEST_ONLY_TYPES
        if all(
            reads[number] and all(name not in read.missing_fields for read in reads[number])
            for number, names in LIST_FIELDS.items()
            for name in names
            if event_type in FIELD_EVENT_TYPES[name]
        )
    )


def _earliest_due_after_latest(
    rule: Rule, log: Iterable[Event], latest: Mapping[str, date | None], calendar: Calendar
) -> date | None:
    """The earliest day a deadline of the rule could fall due after the latest day of every
    type meeting it: the kind of deadline a snapshot proves missed if that day is before the
    extraction day, by saying nothing of those types happened since.

    Such a deadline opens at a start of the rule on or after that latest day (due `due`
    later), or at the meeting on that day (due a repeat interval later). Only rules the
    workbook starts for the child count: a deadline still open has its start in the lists.
    None when there is nothing to bound, such as a due date taken from an event's data.
    """
    if rule.due is None:
        return None
    types = {m.type for m in rule.starts_on}
    starts = [
        calendar.local_date(event.occurred_at)
        for event in log
        if event.type in types and any(m.matches(event) for m in rule.starts_on)
    ]
    if not starts:
        return None
    last = max((day for m in rule.met_by if (day := latest[m.type]) is not None), default=None)
    opened = [(day, rule.due) for day in starts if last is None or day >= last]
    if last is not None:
        opened += [(last, interval) for interval in rule.repeat]
    return min((calendar.add(day, interval) for day, interval in opened), default=None)


def _snapshots(
    ruleset: Ruleset,
    workbook: AnnexAWorkbook,
    rows: Iterable[tuple[int, AnnexARow]],
    events: Iterable[ImportedEvent],
    unseen: Mapping[str, frozenset[str]],
) -> list[ImportedEvent]:
    """Each child's `snapshot_taken` event, where the workbook could not show something that
    meets or cancels a rule, or shows latest days after which a deadline fell due before the
    extraction day (derivation then sees whether it was still open: missed). Credited to the
    child's first row, in list order."""
    calendar = ruleset.calendar
    shown = _shown_in_full(workbook)
    # Rules a snapshot can prove missed: those met only by types the workbook shows in full.
    provable = [
        (rule, met_types, frozenset(m.type for m in rule.starts_on))
        for rule in ruleset.rules
        if rule.met_by and (met_types := frozenset(m.type for m in rule.met_by)) <= shown
    ]
    # Each child's events of the types that start those rules or meet them.
    wanted = shown.union(*(starts for _, _, starts in provable))
    by_child: dict[str, list[Event]] = {}
    for item in events:
        if item.event.type in wanted:
            by_child.setdefault(item.event.case_id, []).append(item.event)
    first_rows: dict[str, tuple[int, AnnexARow]] = {}
    for list_number, row in rows:
        first_rows.setdefault(row.child_id, (list_number, row))
    made: list[ImportedEvent] = []
    for child, (list_number, row) in first_rows.items():
        log = by_child.get(child)
        if log is None and child not in unseen:
            continue
        log = log or []
        types = {event.type for event in log}
        seen = shown - unseen.get(child, frozenset())
        started = [r for r, met, starts in provable if met <= seen and not starts.isdisjoint(types)]
        latest: dict[str, date | None] = dict.fromkeys(seen)
        for event in log if started else ():
            if event.type in latest:
                day = calendar.local_date(event.occurred_at)
                held = latest[event.type]
                latest[event.type] = day if held is None else max(held, day)
        proven = {
            m.type: latest[m.type]
            for rule in started
            if (due := _earliest_due_after_latest(rule, log, latest, calendar)) is not None
            and due < workbook.extracted_on
            for m in rule.met_by
        }
        if not proven and child not in unseen:
            continue
        snapshot = Event(
            id=event_id(child, SNAPSHOT_TYPE, workbook.extracted_on),
            type=SNAPSHOT_TYPE,
            case_id=child,
            occurred_at=calendar.start_of_day(workbook.extracted_on),
            data={
                SOURCE_KEY: SOURCE,
                LATEST_KEY: {t: d.isoformat() if d else None for t, d in sorted(proven.items())},
                UNSEEN_KEY: sorted(unseen.get(child, ())),
            },
        )
        made.append(
            ImportedEvent(snapshot, list_number, row.sheet, row.row, FIELD_HEADINGS["child_id"])
        )
    return made


class _Mapper:
    """Turns one row into events, knowing the rest of the child's rows where a list needs them
    (an assessment's clock runs from the child's referral)."""

    def __init__(self, calendar: Calendar, rows: Iterable[AnnexARow]) -> None:
        self.calendar = calendar
        referrals: dict[str, list[date]] = {}
        cin_starts: dict[str, list[date]] = {}
        for row in rows:
            if isinstance(row, ReferralRow) and row.referral_date is not None:
                referrals.setdefault(row.child_id, []).append(row.referral_date)
            elif isinstance(row, ChildInNeedRow) and row.cin_start is not None:
                cin_starts.setdefault(row.child_id, []).append(row.cin_start)
        self.referrals = {child: sorted(days) for child, days in referrals.items()}
        self.cin_starts = {child: sorted(days) for child, days in cin_starts.items()}
        # Each day's start and each set of codes' data, made once: a workbook's events fall
        # on a few hundred days and carry a handful of different codes, and events sharing
        # their data are hashed with it encoded once (store/ingest.py, content_hashes).
        self.starts: dict[date, datetime] = {}
        self.data: dict[tuple[tuple[str, object], ...], Mapping[str, object]] = {}

    def events_of(self, row: AnnexARow) -> Iterator[tuple[str, Event]]:
        """(the field that evidences it, event) for each event the row evidences.

        A field read as empty (blank, or a cell that could not be read) makes no event, nor do
        the fields it gives the day of (see `FIELD_EVENT_TYPES`).
        """
        child = row.child_id
        if isinstance(row, ReferralRow):
            if row.referral_date is None:
                return
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
            start = row.assessment_start
            if start is not None:
                referral = self.referral_before(child, start)
                yield "assessment_start", self.event(child, "referral_received", referral)
                yield "assessment_start", self.event(child, "assessment_started", start)
            if row.assessment_authorised is not None:
                yield (
                    "assessment_authorised",
                    self.event(child, "assessment_completed", row.assessment_authorised),
                )
        elif isinstance(row, Section47Row):
            strategy = row.strategy_discussion
            if strategy is not None:
                yield "strategy_discussion", self.event(child, "section47_started", strategy)
            if strategy is not None and row.icpc_unnecessary:
                # No date either: the enquiry's own start cancels the conference deadline.
                yield (
                    "icpc_unnecessary",
                    self.event(child, "section47_completed", strategy, outcome="no_conference"),
                )
            if row.icpc_date is not None:
                yield "icpc_date", self.event(child, "icpc_held", row.icpc_date)
        elif isinstance(row, ChildInNeedRow):
            if row.last_seen is not None:
                yield "last_seen", self.latest(child, "child_visited", row.last_seen)
            if row.cin_closure is not None:
                yield "cin_closure", self.event(child, "case_closed", row.cin_closure)
        elif isinstance(row, ChildProtectionRow):
            if row.cp_plan_start is not None:
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
        if start is not None:
            yield "looked_after_start", self.event(child, "became_looked_after", start)
        review = row.latest_statutory_review
        if review is not None:
            # Without the start of care, the review cannot be shown to be the first.
            if start is not None and start <= review <= self.first_review_by(start):
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

    def first_review_by(self, start: date) -> date:
        """The last day of a period of care's first-review window (regulation 33)."""
        return self.calendar.add(start, FIRST_CLA_REVIEW_WITHIN)

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
        start = self.starts.get(day)
        if start is None:
            start = self.starts[day] = self.calendar.start_of_day(day)
        key = tuple(codes.items())
        data = self.data.get(key)
        if data is None:
            data = self.data[key] = {**codes, SOURCE_KEY: SOURCE}
        return Event(
            id=event_id(child, event_type, day),
            type=event_type,
            case_id=child,
            occurred_at=start,
            data=data,
        )

    def latest(self, child: str, event_type: str, day: date) -> Event:
        """A latest-only date: at least the second of its chain."""
        return self.event(child, event_type, day, **{SEQUENCE_KEY: LATEST_ONLY})


def _plausible(row: AnnexARow) -> tuple[AnnexARow | None, list[Rejection]]:
    """The row without what the reader accepts but caseclock cannot store or count from: a
    date before 1900, or a team or worker that is over-long or holds NUL (a cell's `_x0000_`
    escape), is reported and read as empty; a Child Unique ID too long for an event id, or
    holding NUL, leaves the row out."""
    if len(row.child_id) > MAX_CHILD_ID:
        detail = f"longer than {MAX_CHILD_ID} characters"
        return None, [_rejection(row, "child_id", row.child_id[:40], detail)]
    if (fault := text_fault(row.child_id)) is not None:
        return None, [_rejection(row, "child_id", _shown(row.child_id), fault)]
    problems: list[Rejection] = []
    emptied: dict[str, Any] = {}
    for name, value in ((name, getattr(row, name)) for name in _field_names(row)):
        if isinstance(value, date) and value < EARLIEST_DATE:
            problems.append(_rejection(row, name, value.isoformat(), "date before 1900"))
            emptied[name] = None
        elif name in ("team_id", "worker_id") and value and len(value) > MAX_ALLOCATION_ID:
            detail = f"longer than {MAX_ALLOCATION_ID} characters"
            problems.append(_rejection(row, name, value[:40], detail))
            emptied[name] = None
        elif name in ("team_id", "worker_id") and value and (fault := text_fault(value)):
            problems.append(_rejection(row, name, _shown(value), fault))
            emptied[name] = None
    return (replace(row, **emptied) if emptied else row), problems


_FIELD_NAMES: dict[type[AnnexARow], tuple[str, ...]] = {}


def _field_names(row: AnnexARow) -> tuple[str, ...]:
    """A row's field names, in order, kept per row type: asked of every row, and `fields`
    builds them anew each time."""
    names = _FIELD_NAMES.get(type(row))
    if names is None:
        names = _FIELD_NAMES[type(row)] = tuple(f.name for f in fields(row))
    return names


def _shown(value: str) -> str:
    """A refused value as the report can quote it: NUL as the symbol for it."""
    return value[:40].replace("\x00", "\N{SYMBOL FOR NULL}")


def _rejection(row: AnnexARow, field_name: str, value: str, detail: str) -> Rejection:
    return Rejection(row.sheet, row.row, FIELD_HEADINGS[field_name], value, detail, field_name)


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
    for value in (getattr(row, name) for name in _field_names(row)):
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


def expected_headings() -> list[dict[str, object]]:
    """The headings caseclock looks for, list by list, as a refusal names them."""
    return [
        {"list": number, "headings": list(headings)}
        for number, headings in EXPECTED_HEADINGS.items()
    ]
