"""The Standard Safeguarding Dataset (SSD) as a source: a snapshot of its tables mapped to
events; pure, no I/O (service/sources/ssd.py reads the tables, service/store/ssd_sync.py
applies the snapshot).

An authority rebuilds its SSD every night from its case-management system, about six years
of it, so every sync is a snapshot. Each event is one unit of one row: the row's table and
key (a case-management key that stays the same from one rebuild to the next) and the event
type, `ssd:{table}:{key}:{type}`. The store compares the units with those it holds: new ones
are added, changed ones voided and replaced, vanished ones voided.

Only the columns named in `TABLES` are read: keys, dates and codes. Names, dates of birth,
addresses, casenote text and the JSON outcome columns are never selected, so they cannot
reach the service, its database, its logs or the report.

SSD conventions met here: -1 stands for "none" in id columns, 1900-01-01 for "no date";
yes/no columns hold Y, YES, TRUE or 1 (and their opposites) whatever their type; dates come
as timestamps, or as text in a CSV export.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from service.domain.calendar import Calendar
from service.domain.events import Event, check_identifiers
from service.domain.rules import Ruleset
from service.imports.mapping import EARLIEST_DATE, MAX_CHILD_ID, SOURCE_KEY, NotEvaluable
from service.imports.returns import (
    child_fault,
    involvement_edges,
    not_evaluable,
    shown,
    worker_fault,
)
from service.imports.ssda903 import decode

SOURCE = "ssd"
LABEL = "Standard Safeguarding Dataset"
DEFAULT_SCHEMA = "ssd_development"
# SystemC's SSD (1.4.5) holds the allocated case worker's role as the code CW; other
# case-management systems configure their own role codes or names per authority.
DEFAULT_ROLE_CODES = ("CW",)
# Which ssd_professionals column names a worker in caseclock.
WORKER_KEYS: Mapping[str, str] = {
    "staff_id": "prof_staff_id",
    "professional_id": "prof_professional_id",
    "registration_no": "prof_social_worker_registration_no",
}
DEFAULT_WORKER_KEY = "staff_id"
NO_DATE = date(1900, 1, 1)
NO_ID = "-1"
ID_PREFIX = f"{SOURCE}:"
_SHORT_AT = len(ID_PREFIX)  # units are `ssd:{short}:{key}:{type}`
# A revision of a unit (its row changed) is `{unit}~{n}`, n from 2.
REVISION_MARK = "~"
CONTINUES = "X1"
# The codes an event carries in its data, as (name, value) pairs: each distinct set becomes one
# data mapping that every event carrying it shares (most events carry the same few), and
# a mapping shared is encoded once when the snapshot is hashed (store/ingest.py).
Codes = tuple[tuple[str, object], ...]
_YES = frozenset({"Y", "YES", "TRUE", "T", "1"})
_NO = frozenset({"N", "NO", "FALSE", "F", "0"})
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T][0-9:.]*)?", re.ASCII)
_DMY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?: [0-9:.]*)?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Table:
    """A table read: its name, the short name in event ids, its key, and its columns (the
    required ones first; an optional one may be missing from an older SSD)."""

    name: str
    short: str
    key: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.key, *self.required, *self.optional)


TABLES: tuple[Table, ...] = (
    Table(
        "ssd_professionals",
        "prof",
        "prof_professional_id",
        (),
        ("prof_staff_id", "prof_social_worker_registration_no"),
    ),
    Table("ssd_department", "dept", "dept_team_id", ()),
    Table(
        "ssd_cin_episodes",
        "cine",
        "cine_referral_id",
        ("cine_person_id", "cine_referral_date"),
        ("cine_referral_nfa", "cine_close_date"),
    ),
    Table(
        "ssd_cin_assessments",
        "cina",
        "cina_assessment_id",
        ("cina_assessment_start_date", "cina_assessment_auth_date"),
        ("cina_person_id", "cina_referral_id"),
    ),
    Table(
        "ssd_s47_enquiry",
        "s47e",
        "s47e_s47_enquiry_id",
        ("s47e_s47_start_date", "s47e_s47_end_date"),
        ("s47e_person_id", "s47e_referral_id", "s47e_s47_nfa"),
    ),
    Table(
        "ssd_initial_cp_conference",
        "icpc",
        "icpc_icpc_id",
        ("icpc_icpc_date",),
        ("icpc_person_id", "icpc_referral_id", "icpc_icpc_outcome_cp_flag"),
    ),
    Table(
        "ssd_cp_plans",
        "cppl",
        "cppl_cp_plan_id",
        ("cppl_cp_plan_start_date", "cppl_cp_plan_end_date"),
        ("cppl_person_id", "cppl_referral_id"),
    ),
    Table(
        "ssd_cp_visits",
        "cppv",
        "cppv_cp_visit_id",
        ("cppv_cp_visit_date",),
        ("cppv_person_id", "cppv_cp_plan_id", "cppv_cp_visit_seen", "cppv_cp_visit_seen_alone"),
    ),
    Table(
        "ssd_cp_reviews",
        "cppr",
        "cppr_cp_review_id",
        ("cppr_cp_review_date",),
        ("cppr_person_id", "cppr_cp_plan_id"),
    ),
    Table(
        "ssd_cla_episodes",
        "clae",
        "clae_cla_episode_id",
        (
            "clae_person_id",
            "clae_cla_id",
            "clae_cla_episode_start_date",
            "clae_cla_episode_ceased_date",
            "clae_cla_episode_ceased_reason",
        ),
        ("clae_entered_care_date",),
    ),
    Table(
        "ssd_cla_placement",
        "clap",
        "clap_cla_placement_id",
        ("clap_cla_id", "clap_cla_placement_start_date"),
        ("clap_person_id",),
    ),
    Table(
        "ssd_cla_reviews",
        "clar",
        "clar_cla_review_id",
        ("clar_cla_id", "clar_cla_review_date"),
        ("clar_cla_review_cancelled", "clar_cla_person_id"),
    ),
    Table(
        "ssd_cla_visits",
        "clav",
        "clav_cla_visit_id",
        ("clav_cla_visit_date",),
        ("clav_cla_id", "clav_person_id", "clav_cla_visit_seen", "clav_cla_visit_seen_alone"),
    ),
    Table(
        "ssd_involvements",
        "invo",
        "invo_involvements_id",
        ("invo_professional_id", "invo_professional_role_id", "invo_involvement_start_date"),
        ("invo_person_id", "invo_referral_id", "invo_professional_team"),
    ),
)
_CP_VISIT = ("cppv_cp_visit_date", "cppv_cp_visit_seen", "cppv_cp_visit_seen_alone")
_CLA_VISIT = ("clav_cla_visit_date", "clav_cla_visit_seen", "clav_cla_visit_seen_alone")
TABLES_BY_NAME: Mapping[str, Table] = {table.name: table for table in TABLES}
_NAMES_BY_SHORT: Mapping[str, str] = {table.short: table.name for table in TABLES}
# Tables that only name workers and teams for the others: they make no events themselves.
LOOKUP_TABLES = frozenset({"ssd_professionals", "ssd_department"})

# The event types an SSD makes, with the codes a rule may read.
EVENT_SHAPES: tuple[tuple[str, Mapping[str, object]], ...] = (
    ("referral_received", {}),
    ("referral_decision_made", {"outcome": "no_further_action"}),
    ("assessment_started", {}),
    ("assessment_completed", {}),
    ("strategy_discussion_held", {}),
    ("section47_started", {}),
    ("section47_completed", {"outcome": "no_conference"}),
    ("section47_completed", {"outcome": "conference"}),
    ("icpc_held", {}),
    ("child_protection_plan_started", {}),
    ("child_protection_plan_ended", {}),
    ("cp_review_held", {}),
    ("child_visited", {}),
    ("became_looked_after", {}),
    ("placement_started", {}),
    ("cla_review_held", {}),
    ("ceased_looked_after", {}),
    ("case_allocated", {}),
    ("case_reopened", {}),
    ("case_closed", {}),
)
# What the SSD lacks for rules it cannot judge, beyond what the ruleset says of itself.
_LACKS: Mapping[str, str] = {
    "pathway_plan_agreed": (
        "ssd_care_leavers holds only each care leaver's latest pathway plan review, not the "
        "plan's start or the reviews before it, so the chain of reviews cannot be followed"
    ),
}


class SnapshotError(Exception):
    """A snapshot that cannot be applied at all; ``detail`` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rows:
    """A table's rows as read: the columns present (in `Table.columns` order) and the
    values, one tuple a row."""

    columns: tuple[str, ...]
    values: Sequence[Sequence[object]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The tables read from one SSD; a table the SSD does not have is absent."""

    tables: Mapping[str, Rows]


@dataclass(frozen=True, slots=True)
class SsdConfig:
    """How an authority's SSD is read: which involvement roles allocate a case, and which
    professional's id names the worker."""

    role_codes: tuple[str, ...] = DEFAULT_ROLE_CODES
    worker_key: str = DEFAULT_WORKER_KEY


@dataclass(frozen=True, slots=True)
class Refused:
    """A value not believed, with the row's table and key: the row is left out when it
    cannot be placed (`column` is then "row"), otherwise only that value."""

    table: str
    key: str
    column: str
    value: str
    detail: str


@dataclass(slots=True)
class TableCount:
    """A table's rows, the events they made, and the rows left out."""

    rows: int = 0
    events: int = 0
    rows_rejected: int = 0


@dataclass(frozen=True, slots=True)
class MappedSnapshot:
    """A snapshot mapped: each unit's event (its id is the unit), what was refused, and
    each table's counts; `missing` are the tables the SSD does not have, with why that
    matters."""

    events: Mapping[str, Event]
    refused: tuple[Refused, ...]
    counts: Mapping[str, TableCount]
    missing: Mapping[str, str]


def rows_from_csv(table: Table, data: bytes) -> Rows:
    """A table exported as CSV (SSD column names in its header; UTF-8 with or without a byte
    order mark, UTF-16 with its mark, or Windows-1252): only the columns caseclock reads.
    Raises SnapshotError when it is not text."""
    try:
        text = decode(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{table.name}.csv {exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    at = {name: i for i, name in enumerate(header)}
    present = tuple(c for c in table.columns if c in at)
    picks = [at[c] for c in present]
    width = len(header)
    values = [
        tuple(row[i] if i < len(row) else None for i in picks)
        for row in reader
        if row and (len(row) > 1 or row[0].strip() or width == 1)
    ]
    return Rows(present, values)


def unit_of(event_id: str) -> tuple[str, int]:
    """An SSD event's unit and revision (1 for the first event of a unit). The mark follows
    the event type, so a key holding one is still read whole."""
    head, mark, tail = event_id.rpartition(REVISION_MARK)
    if mark and tail.isdigit():
        return head, int(tail)
    return event_id, 1


def revision_id(unit: str, revision: int) -> str:
    return unit if revision == 1 else f"{unit}{REVISION_MARK}{revision}"


def table_of(unit: str) -> str:
    """The table a unit's row is in (asked of every unit of a snapshot: the short name is
    sliced out, not split off with the rest of the id)."""
    return _NAMES_BY_SHORT[unit[_SHORT_AT : unit.index(":", _SHORT_AT)]]


def rules_not_evaluable(ruleset: Ruleset) -> list[NotEvaluable]:
    """The rules an SSD cannot judge, and why."""
    found = []
    for item in not_evaluable(ruleset, source=SOURCE, label=LABEL, shapes=EVENT_SHAPES):
        rule = ruleset.rule(item.rule_id)
        starts = rule.starts_on if rule is not None else ()
        lacks = [_LACKS[m.type] for m in starts if m.type in _LACKS]
        found.append(NotEvaluable(item.rule_id, lacks[0]) if lacks else item)
    return found


def map_snapshot(
    snapshot: Snapshot, *, config: SsdConfig, calendar: Calendar, today: date
) -> MappedSnapshot:
    """The events a snapshot evidences, one per unit."""
    mapper = _Mapper(config, calendar, today)
    for table in TABLES:
        rows = snapshot.tables.get(table.name)
        if rows is None:
            mapper.missing[table.name] = _why_missing(table, config)
            continue
        absent = [c for c in (table.key, *table.required) if c not in rows.columns]
        if absent:
            raise SnapshotError(
                f"{table.name} has no column {', '.join(absent)}: caseclock reads "
                f"{', '.join(table.columns)}"
            )
        mapper.read(table, rows)
    mapper.close_episodes()
    mapper.close_periods()
    return MappedSnapshot(mapper.events, tuple(mapper.refused), mapper.counts, mapper.missing)


def _why_missing(table: Table, config: SsdConfig) -> str:
    if table.name == "ssd_professionals":
        if config.worker_key == "professional_id":
            return "not needed: workers are named by invo_professional_id"
        return "workers cannot be named: allocations carry their team only"
    if table.name == "ssd_department":
        return "teams are not checked against it"
    return "the SSD has no such table: nothing it would give is known"


# Reading values ----------------------------------------------------------------------------


class _Unreadable(ValueError):
    """A value that is not what its column holds."""


def ident(value: object) -> str | None:
    """An id as text, or None for none (blank, NULL or -1). Asked of every key and link of
    a snapshot, so text (nearly every id) is tested for NULL only when it has four letters."""
    if type(value) is str:
        text = value.strip()
    elif value is None:
        return None
    else:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
    if not text or text == NO_ID or (len(text) == 4 and text.upper() == "NULL"):
        return None
    return text


def day_of(value: object) -> date | None:
    """A date, or None for none (blank, or 1900-01-01); raises _Unreadable otherwise."""
    if value is None:
        return None
    if isinstance(value, datetime):
        found: date = value.date()
    elif isinstance(value, date):
        found = value
    else:
        text = str(value).strip()
        if not text or text.upper() == "NULL":
            return None
        try:
            if (iso := _DAY.fullmatch(text)) is not None:
                found = date(int(iso[1]), int(iso[2]), int(iso[3]))
            elif (dmy := _DMY.fullmatch(text)) is not None:
                found = date(int(dmy[3]), int(dmy[2]), int(dmy[1]))
            else:
                raise _Unreadable("not a date")
        except ValueError as exc:
            raise _Unreadable("not a date") from exc
    return None if found == NO_DATE else found


def flag_of(value: object) -> bool | None:
    """A yes/no, or None when blank; raises _Unreadable otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().upper()
    if not text or text == "NULL":
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise _Unreadable("not a yes or no")


def _id_fault(value: str) -> str | None:
    if value.isascii() and value.isprintable() and len(value) <= MAX_CHILD_ID:
        return None  # the common case, decided without looking at each character
    problems = check_identifiers({"id": value})
    return problems[0].detail if problems else child_fault(value)


# The mapping -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Mapper:
    config: SsdConfig
    calendar: Calendar
    today: date
    events: dict[str, Event] = field(default_factory=dict)
    refused: list[Refused] = field(default_factory=list)
    counts: dict[str, TableCount] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)
    teams: set[str] | None = None
    by_referral: dict[str, str] = field(default_factory=dict)
    by_plan: dict[str, str] = field(default_factory=dict)
    by_period: dict[str, str] = field(default_factory=dict)
    episodes: dict[str, list[tuple[date, date | None, str]]] = field(default_factory=dict)
    periods: dict[str, list[tuple[date, date | None, date | None, str | None, str]]] = field(
        default_factory=dict
    )
    _starts: dict[date, datetime] = field(default_factory=dict)
    _good_children: set[str] = field(default_factory=set)
    _data: dict[Codes, Mapping[str, object]] = field(default_factory=dict)
    _days: dict[datetime, date] = field(default_factory=dict)
    _flags: dict[str, bool | None] = field(default_factory=dict)

    def read(self, table: Table, rows: Rows) -> None:
        count = self.counts.setdefault(table.name, TableCount())
        index = {name: i for i, name in enumerate(rows.columns)}
        reader = getattr(self, "_" + table.name.removeprefix("ssd_"))
        seen: dict[str, Sequence[object]] = {}
        key_at = index[table.key]
        count.rows += len(rows.values)
        for row in rows.values:
            key = ident(row[key_at])
            fault = "no key" if key is None else _id_fault(key)
            if key is None or fault is not None:
                self._refuse(table, key or "", table.key, str(row[key_at]), f"{fault}", whole=True)
                continue
            first = seen.setdefault(key, row)
            if first is not row:
                if tuple(first) != tuple(row):
                    self._refuse(
                        table,
                        key,
                        table.key,
                        key,
                        "key repeated with other values: the first row is kept",
                        whole=True,
                    )
                else:
                    count.rows_rejected += 1  # an exact copy (a join that repeated it)
                continue
            reader(table, key, _Row(row, index))

    # lookups

    def _professionals(self, table: Table, key: str, row: _Row) -> None:
        column = WORKER_KEYS[self.config.worker_key]
        worker = key if column == table.key else ident(row.get(column))
        if worker is not None:
            self.workers[key] = worker

    def _department(self, table: Table, key: str, row: _Row) -> None:
        if self.teams is None:
            self.teams = set()
        self.teams.add(key)

    # children in need

    def _cin_episodes(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "cine_person_id")
        referral = self._day(table, key, row, "cine_referral_date")
        if child is None:
            return
        if referral is None:
            self._refuse(table, key, "cine_referral_date", "", "no referral date", whole=True)
            return
        self.by_referral[key] = child
        self._event(table, key, "referral_received", child, referral)
        if self._flag(table, key, row, "cine_referral_nfa"):
            # No decision time: the referral's own day closes it with no further action.
            self._event(
                table,
                key,
                "referral_decision_made",
                child,
                referral,
                codes=(("outcome", "no_further_action"),),
            )
        closure = self._day(table, key, row, "cine_close_date")
        self.episodes.setdefault(child, []).append((referral, closure, key))

    def close_episodes(self) -> None:
        """Each child's involvement: overlapping episodes form one span, opened by its first
        referral and closed by its last closure (returns.involvement_edges)."""
        table = TABLES_BY_NAME["ssd_cin_episodes"]
        for child, episodes in self.episodes.items():
            for kind, day, key in involvement_edges(episodes):
                self._event(table, key, kind, child, day)

    def _cin_assessments(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "cina_person_id", referral="cina_referral_id")
        if child is None:
            return
        for column, event_type in (
            ("cina_assessment_start_date", "assessment_started"),
            ("cina_assessment_auth_date", "assessment_completed"),
        ):
            if (day := self._day(table, key, row, column)) is not None:
                self._event(table, key, event_type, child, day)

    def _s47_enquiry(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "s47e_person_id", referral="s47e_referral_id")
        if child is None:
            return
        # The enquiry's start is the day of the strategy discussion that began it.
        start = self._day(table, key, row, "s47e_s47_start_date")
        if start is not None:
            self._event(table, key, "strategy_discussion_held", child, start)
            self._event(table, key, "section47_started", child, start)
        end = self._day(table, key, row, "s47e_s47_end_date")
        no_further_action = self._flag(table, key, row, "s47e_s47_nfa")
        if end is not None and no_further_action is not None:
            outcome = "no_conference" if no_further_action else "conference"
            self._event(
                table, key, "section47_completed", child, end, codes=(("outcome", outcome),)
            )

    def _initial_cp_conference(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "icpc_person_id", referral="icpc_referral_id")
        day = self._day(table, key, row, "icpc_icpc_date")
        if child is None or day is None:
            return
        plan = self._flag(table, key, row, "icpc_icpc_outcome_cp_flag")
        self._event(
            table, key, "icpc_held", child, day, codes=() if plan is None else (("plan", plan),)
        )

    # child protection

    def _cp_plans(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "cppl_person_id", referral="cppl_referral_id")
        if child is None:
            return
        self.by_plan[key] = child
        for column, event_type in (
            ("cppl_cp_plan_start_date", "child_protection_plan_started"),
            ("cppl_cp_plan_end_date", "child_protection_plan_ended"),
        ):
            if (day := self._day(table, key, row, column)) is not None:
                self._event(table, key, event_type, child, day)

    def _cp_visits(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "cppv_person_id", plan="cppv_cp_plan_id")
        self._visit(table, key, row, child, _CP_VISIT)

    def _cp_reviews(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "cppr_person_id", plan="cppr_cp_plan_id")
        day = self._day(table, key, row, "cppr_cp_review_date")
        if child is not None and day is not None:  # no date: not held yet
            self._event(table, key, "cp_review_held", child, day)

    # looked after

    def _cla_episodes(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "clae_person_id")
        start = self._day(table, key, row, "clae_cla_episode_start_date")
        if child is None:
            return
        if start is None:
            self._refuse(table, key, "clae_cla_episode_start_date", "", "no start", whole=True)
            return
        period = ident(row.get("clae_cla_id")) or key
        self.by_period[period] = child
        ceased = self._day(table, key, row, "clae_cla_episode_ceased_date")
        entered = self._day(table, key, row, "clae_entered_care_date")
        reason = ident(row.get("clae_cla_episode_ceased_reason"))
        self.periods.setdefault(period, []).append((start, ceased, entered, reason, key))

    def close_periods(self) -> None:
        """Each period of care: it began on the day care began (else its first episode's
        start) and ends with its last episode, unless that ended with X1 (the next episode
        carries on the same day)."""
        table = TABLES_BY_NAME["ssd_cla_episodes"]
        for period, episodes in self.periods.items():
            child = self.by_period[period]
            episodes.sort(key=lambda e: e[0])
            began = min((e[2] for e in episodes if e[2] is not None), default=episodes[0][0])
            self._event(table, period, "became_looked_after", child, began)
            _, ceased, _, reason, _ = episodes[-1]
            if ceased is not None and (reason or "").upper() != CONTINUES:
                self._event(table, period, "ceased_looked_after", child, ceased)

    def _cla_placement(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "clap_person_id", period="clap_cla_id")
        day = self._day(table, key, row, "clap_cla_placement_start_date")
        if child is not None and day is not None:
            self._event(table, key, "placement_started", child, day)

    def _cla_reviews(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "clar_cla_person_id", period="clar_cla_id")
        day = self._day(table, key, row, "clar_cla_review_date")
        if child is None or day is None or self._flag(table, key, row, "clar_cla_review_cancelled"):
            return  # not held yet, or cancelled: no review was held
        self._event(table, key, "cla_review_held", child, day)

    def _cla_visits(self, table: Table, key: str, row: _Row) -> None:
        child = self._child(table, key, row, "clav_person_id", period="clav_cla_id")
        self._visit(table, key, row, child, _CLA_VISIT)

    def _visit(
        self, table: Table, key: str, row: _Row, child: str | None, columns: tuple[str, str, str]
    ) -> None:
        """A visit; `columns` are its date, seen and seen-alone columns."""
        date_column, seen_column, alone_column = columns
        day = self._day(table, key, row, date_column)
        if child is None or day is None:
            return
        seen = self._flag(table, key, row, seen_column)
        alone = self._flag(table, key, row, alone_column)
        codes: Codes = () if seen is None else (("seen", seen),)
        if alone is not None:
            codes += (("seen_alone", alone),)
        self._event(table, key, "child_visited", child, day, codes=codes)

    # allocation

    def _involvements(self, table: Table, key: str, row: _Row) -> None:
        role = ident(row.get("invo_professional_role_id"))
        if role is None or role.upper() not in self._roles:
            return  # another role: not who holds the case
        child = self._child(table, key, row, "invo_person_id", referral="invo_referral_id")
        start = self._day(table, key, row, "invo_involvement_start_date")
        if child is None:
            return
        if start is None:
            self._refuse(table, key, "invo_involvement_start_date", "", "no start", whole=True)
            return
        worker = self._worker(table, key, ident(row.get("invo_professional_id")))
        team = self._team(table, key, ident(row.get("invo_professional_team")))
        if worker is None and team is None:
            self._refuse(
                table, key, "invo_professional_id", "", "names no worker or team", whole=True
            )
            return
        self._event(table, key, "case_allocated", child, start, worker=worker, team=team)

    @property
    def _roles(self) -> frozenset[str]:
        return frozenset(code.strip().upper() for code in self.config.role_codes)

    def _worker(self, table: Table, key: str, professional: str | None) -> str | None:
        if professional is None:
            return None
        worker = professional
        if self.config.worker_key != "professional_id":
            found = self.workers.get(professional)
            if found is None:
                column = WORKER_KEYS[self.config.worker_key]
                detail = f"no {column} for this professional in ssd_professionals"
                self._refuse(table, key, "invo_professional_id", professional, detail)
                return None
            worker = found
        fault = worker_fault(worker) or _id_fault(worker)
        if fault is not None:
            self._refuse(table, key, "invo_professional_id", worker, fault)
            return None
        return worker

    def _team(self, table: Table, key: str, team: str | None) -> str | None:
        if team is None:
            return None
        if self.teams is not None and team not in self.teams:
            self._refuse(table, key, "invo_professional_team", team, "not a team in ssd_department")
            return None
        fault = worker_fault(team) or _id_fault(team)
        if fault is not None:
            self._refuse(table, key, "invo_professional_team", team, fault)
            return None
        return team

    # helpers

    def _child(
        self,
        table: Table,
        key: str,
        row: _Row,
        column: str,
        *,
        referral: str | None = None,
        plan: str | None = None,
        period: str | None = None,
    ) -> str | None:
        """The row's child: its own person column, else through the referral, plan or
        period of care it belongs to."""
        child = ident(row.get(column))
        if child is None:
            child = self._linked(row, referral, plan, period)
        if child is None:
            self._refuse(
                table,
                key,
                column,
                "",
                "names no child (nor a referral, plan or period of care of one)",
                whole=True,
            )
            return None
        if child not in self._good_children:
            fault = _id_fault(child)
            if fault is not None:
                self._refuse(table, key, column, child, fault, whole=True)
                return None
            self._good_children.add(child)
        return child

    def _linked(
        self, row: _Row, referral: str | None, plan: str | None, period: str | None
    ) -> str | None:
        """The child of the referral, plan or period of care the row names."""
        for link, known in (
            (referral, self.by_referral),
            (plan, self.by_plan),
            (period, self.by_period),
        ):
            if link is not None and (linked := ident(row.get(link))) is not None:
                child = known.get(linked)
                if child is not None:
                    return child
        return None

    def _day(self, table: Table, key: str, row: _Row, column: str) -> date | None:
        """The column's day, checked. A plain timestamp (a million of them, on a few
        thousand days) is checked once; one with a time zone is not remembered, as equal
        instants in two zones may fall on two days; a refused one is refused on each row."""
        value = row.get(column)
        plain = value if isinstance(value, datetime) and value.tzinfo is None else None
        if plain is not None and (known := self._days.get(plain)) is not None:
            return known
        try:
            day = day_of(value)
        except _Unreadable as exc:
            self._refuse(table, key, column, str(value), str(exc))
            return None
        if day is None:
            return None
        if day < EARLIEST_DATE:
            self._refuse(table, key, column, day.isoformat(), "date before 1900")
            return None
        if day > self.today:
            self._refuse(table, key, column, day.isoformat(), f"after today ({self.today})")
            return None
        if plain is not None:
            self._days[plain] = day
        return day

    def _flag(self, table: Table, key: str, row: _Row, column: str) -> bool | None:
        """The column's yes or no; text (a few words, said a million times) is read once."""
        value = row.get(column)
        if type(value) is str and value in self._flags:
            return self._flags[value]
        try:
            flag = flag_of(value)
        except _Unreadable as exc:
            self._refuse(table, key, column, str(value), str(exc))
            return None
        if type(value) is str:
            self._flags[value] = flag
        return flag

    def _refuse(
        self, table: Table, key: str, column: str, value: str, detail: str, *, whole: bool = False
    ) -> None:
        if whole:
            self.counts[table.name].rows_rejected += 1
        self.refused.append(
            Refused(table.name, shown(key), "row" if whole else column, shown(value), detail)
        )

    def _event(
        self,
        table: Table,
        key: str,
        event_type: str,
        child: str,
        day: date,
        *,
        worker: str | None = None,
        team: str | None = None,
        codes: Codes = (),
    ) -> None:
        unit = f"{ID_PREFIX}{table.short}:{key}:{event_type}"
        occurred_at = self._starts.get(day)
        if occurred_at is None:
            occurred_at = self._starts[day] = self.calendar.start_of_day(day)
        data = self._data.get(codes)
        if data is None:
            data = self._data[codes] = {**dict(codes), SOURCE_KEY: SOURCE}
        self.events[unit] = Event(unit, event_type, child, occurred_at, worker, team, data)
        self.counts[table.name].events += 1


@dataclass(slots=True)  # not frozen: made once a row, and a frozen one is slower to make
class _Row:
    values: Sequence[object]
    index: Mapping[str, int]

    def get(self, column: str) -> object:
        at = self.index.get(column)
        return None if at is None else self.values[at]
