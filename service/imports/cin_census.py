"""Read a Children in Need census XML file and map it to events; pure, no I/O.

Every schema year from 2017 to 2026 is read the same way: the census declares no namespace
(a prefix, where an export adds one, is ignored), the elements caseclock uses have kept their
names and places since 2017, and the year is the one ending on ``Header/CollectionDetails/
ReferenceDate`` (``Year`` has been seen to disagree with it). Of each ``Child`` only
``ChildIdentifiers/LAchildID`` and the dates of its ``CINdetails`` are read: UPN, names, date
of birth, sex, ethnicity and disabilities are never taken out of the file.

The file is parsed by the standard library's expat with every document type declaration
refused, so entities (internal, external, parameter; the "billion laughs") cannot be declared,
let alone expanded; its size and nesting are bounded before and while it is parsed.

Each episode of need (``CINdetails``) has no identifier in the census: it is the child's
episode begun on its ``CINreferralDate``. Each event's id is the source, the child, the event
type and the day (``cin-census:{LAchildID}:{type}:{YYYY-MM-DD}``), so an episode still open
in the next year's census gives the same events again (duplicates, stored once), and
importing several years builds one history. Dates after the census's reference date (or after
today, for a census produced in-year) are refused, cell by cell, as are unreadable values: the
rest of the episode still counts.

The mapping, element by element, is in docs/sources.md.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from service.domain.calendar import Calendar
from service.domain.events import Event
from service.domain.rules import Ruleset
from service.imports.annex_a import Rejection, SkippedSheet
from service.imports.mapping import SOURCE_KEY, NotEvaluable
from service.imports.returns import (
    ROW_LEFT_OUT,
    MappedReturn,
    Part,
    ReturnError,
    SourcedEvent,
    child_fault,
    date_fault,
    event_id,
    involvement_edges,
    not_evaluable,
    shown,
)

SOURCE = "cin-census"
LABEL = "CIN census"
# A large authority's census is a few tens of MiB; the upload limit is below this.
MAX_CENSUS_BYTES = 64 * 1024 * 1024
# Message/Children/Child/CINdetails/ChildProtectionPlans/Reviews/CPPreviewDate is 7 deep.
MAX_DEPTH = 16

# The blocks of an episode, in the order the report lists them; `Reviews` counts each
# CPPreviewDate, which is what the census holds one of per review.
PARTS = (
    "CINdetails",
    "Assessments",
    "CINPlanDates",
    "Section47",
    "ChildProtectionPlans",
    "Reviews",
)
_BLOCKS = frozenset(PARTS[1:-1])
# The elements read, by the element they sit in; nothing else of a child is kept.
_READ: Mapping[str, frozenset[str]] = {
    "CollectionDetails": frozenset({"ReferenceDate"}),
    "ChildIdentifiers": frozenset({"LAchildID"}),
    "CINdetails": frozenset(
        {"CINreferralDate", "ReferralNFA", "CINclosureDate", "DateOfInitialCPC"}
    ),
    "Assessments": frozenset({"AssessmentActualStartDate", "AssessmentAuthorisationDate"}),
    "CINPlanDates": frozenset({"CINPlanStartDate", "CINPlanEndDate"}),
    "Section47": frozenset({"S47ActualStartDate", "DateOfInitialCPC", "ICPCnotRequired"}),
    "ChildProtectionPlans": frozenset({"CPPstartDate", "CPPendDate"}),
    "Reviews": frozenset({"CPPreviewDate"}),
}
# xs:date, which may carry a timezone.
_XS_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?", re.ASCII)
_YES = frozenset({"1", "true"})
_NO = frozenset({"0", "false"})

# Every event type the mapping makes, with its codes: what `rules_not_evaluable` tries.
EVENT_SHAPES: tuple[tuple[str, Mapping[str, object]], ...] = (
    ("referral_received", {}),
    ("referral_decision_made", {"outcome": "no_further_action"}),
    ("assessment_started", {}),
    ("assessment_completed", {}),
    ("cin_plan_started", {}),
    ("cin_plan_ended", {}),
    ("section47_started", {}),
    ("section47_completed", {"outcome": "no_conference"}),
    ("icpc_held", {}),
    ("child_protection_plan_started", {}),
    ("child_protection_plan_ended", {}),
    ("cp_review_held", {}),
    ("case_closed", {}),
    ("case_reopened", {}),
)


# What the reader gives -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Value:
    """A value read from an element, with the element's name and line, to report it by."""

    text: str
    element: str
    line: int


@dataclass(frozen=True, slots=True)
class Dated:
    """A date the census gives, and where."""

    day: date
    part: str
    element: str
    line: int


@dataclass(frozen=True, slots=True)
class Block:
    """One Assessments, CINPlanDates, Section47 or ChildProtectionPlans block: its readable
    dates by element (CPPreviewDate: every review), its yes/no codes, and its line."""

    kind: str
    line: int
    dates: Mapping[str, tuple[Dated, ...]]
    flags: Mapping[str, bool]

    def first(self, element: str) -> Dated | None:
        found = self.dates.get(element, ())
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Episode:
    """One CINdetails: an episode of need, begun on its referral date."""

    child_id: str
    line: int
    referral: Dated | None
    nfa: bool
    closure: Dated | None
    icpc: Dated | None
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Census:
    reference_date: date
    episodes: tuple[Episode, ...]
    rejected: tuple[Rejection, ...]
    rows: Mapping[str, int]
    rows_by_child: Mapping[str, int]


# Reading ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """An element being read: its name, its line, and the values read inside it so far."""

    name: str
    line: int
    values: list[Value] = field(default_factory=list)
    inner: list[_Draft] = field(default_factory=list)


class _Refused(Exception):
    """The document is not safe to read; raised from inside the parser's handlers."""


def read_cin_census(data: bytes, *, today: date) -> Census:
    """The census's episodes, children without a usable LAchildID left out and reported.

    Raises :class:`ReturnError` when the file is too large, unsafe (a document type
    declaration, so entities), not well-formed XML, or not a CIN census.
    """
    if len(data) > MAX_CENSUS_BYTES:
        raise ReturnError(f"the file is over {MAX_CENSUS_BYTES // (1024 * 1024)} MiB")
    reader = _Reader()
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = reader.refuse_doctype
    parser.EntityDeclHandler = reader.refuse_entity
    parser.ExternalEntityRefHandler = reader.refuse_entity
    parser.StartElementHandler = lambda name, _attributes: reader.start(
        name, parser.CurrentLineNumber
    )
    parser.EndElementHandler = lambda _name: reader.end()
    parser.CharacterDataHandler = reader.text
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ReturnError(str(exc)) from exc
    except xml.parsers.expat.ExpatError as exc:
        reason = xml.parsers.expat.ErrorString(exc.code)
        raise ReturnError(
            f"not well-formed XML at line {exc.lineno}, column {exc.offset}: {reason} "
            "(is it UTF-8, or the encoding its XML declaration names?)"
        ) from exc
    if reader.root not in (None, "Message"):
        raise ReturnError(f"the root element is {reader.root}, not Message: not a CIN census")
    return _census(reader, today)


class _Reader:
    """Keeps the elements caseclock reads (see `_READ`) and the blocks that hold them,
    nothing else."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.root: str | None = None
        self.reference: Value | None = None
        self.children: list[_Draft] = []
        self.child: _Draft | None = None
        self.episode: _Draft | None = None
        self.block: _Draft | None = None
        self.capture: list[str] | None = None
        self.capture_line = 0

    def refuse_doctype(self, *_args: Any) -> None:
        raise _Refused(
            "the file has a document type declaration (<!DOCTYPE): a CIN census has none, "
            "and entities are refused"
        )

    def refuse_entity(self, *_args: Any) -> int:
        raise _Refused("the file declares or refers to an entity: entities are refused")

    def start(self, qualified: str, line: int) -> None:
        name = qualified.rpartition(":")[2]
        parent = self.path[-1] if self.path else None
        self.path.append(name)
        if len(self.path) > MAX_DEPTH:
            raise _Refused(f"elements are nested more than {MAX_DEPTH} deep at line {line}")
        if parent is None:
            self.root = name
        elif name == "Child" and parent == "Children":
            self.child = _Draft(name, line)
        elif name == "CINdetails" and self.child is not None and parent == "Child":
            self.episode = _Draft(name, line)
        elif name in _BLOCKS and self.episode is not None and parent == "CINdetails":
            self.block = _Draft(name, line)
        elif name == "Reviews" and self.block is not None and parent == "ChildProtectionPlans":
            pass
        if parent is not None and name in _READ.get(parent, ()):
            self.capture, self.capture_line = [], line

    def text(self, content: str) -> None:
        if self.capture is not None:
            self.capture.append(content)

    def end(self) -> None:
        name = self.path.pop()
        parent = self.path[-1] if self.path else None
        if self.capture is not None:
            value = Value("".join(self.capture).strip(), name, self.capture_line)
            self.capture = None
            holder = {
                "CollectionDetails": None,
                "ChildIdentifiers": self.child,
                "CINdetails": self.episode,
                "Reviews": self.block,
            }.get(parent or "", self.block)
            if parent == "CollectionDetails" and self.reference is None:
                self.reference = value
            elif holder is not None:
                holder.values.append(value)
        elif name in _BLOCKS and parent == "CINdetails" and self.block is not None:
            if self.episode is not None:
                self.episode.inner.append(self.block)
            self.block = None
        elif name == "CINdetails" and parent == "Child" and self.episode is not None:
            if self.child is not None:
                self.child.inner.append(self.episode)
            self.episode = None
        elif name == "Child" and parent == "Children" and self.child is not None:
            self.children.append(self.child)
            self.child = None


def _census(reader: _Reader, today: date) -> Census:
    value = reader.reference
    if value is None:
        raise ReturnError(
            "no Header/CollectionDetails/ReferenceDate: not a CIN census (the census's year "
            "is the one ending on its reference date)"
        )
    reference = _date(value.text)
    if reference is None:
        raise ReturnError(
            f"the ReferenceDate {shown(value.text)!r} at line {value.line} is not a date "
            "(YYYY-MM-DD)"
        )
    if reference > today:
        # A census produced in-year may name the coming 31 March: nothing after today is.
        last, last_name = today, "today"
    else:
        last, last_name = reference, "the census's reference date"
    rejected: list[Rejection] = []
    rows = dict.fromkeys(PARTS, 0)
    rows_by_child: dict[str, int] = {}
    episodes: list[Episode] = []
    for child in reader.children:
        ids = [v for v in child.values if v.element == "LAchildID"]
        child_id = ids[0].text if ids else ""
        size = _count(child, rows)
        fault = child_fault(child_id)
        if fault is not None:
            for draft in child.inner:
                column = ids[0] if ids else Value("", "LAchildID", draft.line)
                rejected.append(
                    Rejection(
                        "CINdetails",
                        draft.line,
                        "LAchildID",
                        shown(column.text),
                        f"{fault}; the episode is left out",
                        ROW_LEFT_OUT,
                    )
                )
            continue
        rows_by_child[child_id] = rows_by_child.get(child_id, 0) + size
        cells = _Cells(last, last_name, rejected)
        for draft in child.inner:
            episodes.append(cells.episode(child_id, draft))
    return Census(reference, tuple(episodes), tuple(rejected), rows, rows_by_child)


def _count(child: _Draft, rows: dict[str, int]) -> int:
    """Add the child's blocks to the count of rows per part; how many it has."""
    size = 0
    for episode in child.inner:
        rows["CINdetails"] += 1
        size += 1
        for block in episode.inner:
            rows[block.name] += 1
            reviews = sum(v.element == "CPPreviewDate" for v in block.values)
            rows["Reviews"] += reviews
            size += 1 + reviews
    return size


@dataclass(slots=True)
class _Cells:
    """Reads values into dates and yes/no codes, refusing (and reporting) what cannot be."""

    last: date
    last_name: str
    rejected: list[Rejection]

    def episode(self, child_id: str, draft: _Draft) -> Episode:
        dates = self.dates("CINdetails", draft.values)
        flags = self.flags("CINdetails", draft.values)
        return Episode(
            child_id=child_id,
            line=draft.line,
            referral=_first(dates, "CINreferralDate"),
            nfa=flags.get("ReferralNFA", False),
            closure=_first(dates, "CINclosureDate"),
            icpc=_first(dates, "DateOfInitialCPC"),
            blocks=tuple(
                Block(
                    block.name,
                    block.line,
                    self.dates(block.name, block.values),
                    self.flags(block.name, block.values),
                )
                for block in draft.inner
            ),
        )

    def dates(self, part: str, values: list[Value]) -> dict[str, tuple[Dated, ...]]:
        found: dict[str, list[Dated]] = {}
        for value in values:
            if value.element in ("ReferralNFA", "ICPCnotRequired", "LAchildID") or not value.text:
                continue
            where = "Reviews" if value.element == "CPPreviewDate" else part
            day = _date(value.text)
            fault = (
                "not a date (YYYY-MM-DD)"
                if day is None
                else date_fault(day, self.last, self.last_name)
            )
            if day is None or fault is not None:
                self.refuse(where, value, fault or "")
                continue
            found.setdefault(value.element, []).append(Dated(day, where, value.element, value.line))
        return {element: tuple(days) for element, days in found.items()}

    def flags(self, part: str, values: list[Value]) -> dict[str, bool]:
        found: dict[str, bool] = {}
        for value in values:
            if value.element not in ("ReferralNFA", "ICPCnotRequired") or not value.text:
                continue
            code = value.text.lower()
            if code in _YES or code in _NO:
                found[value.element] = code in _YES
            else:
                self.refuse(part, value, "not a yes/no code (1 or 0, true or false)")
        return found

    def refuse(self, part: str, value: Value, detail: str) -> None:
        self.rejected.append(Rejection(part, value.line, value.element, shown(value.text), detail))


def _first(dates: Mapping[str, tuple[Dated, ...]], element: str) -> Dated | None:
    found = dates.get(element, ())
    return found[0] if found else None


def _date(text: str) -> date | None:
    match = _XS_DATE.fullmatch(text)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


# Mapping ---------------------------------------------------------------------------------


def map_census(census: Census, *, ruleset: Ruleset) -> MappedReturn:
    """The events the census evidences, each id once (the first place to evidence it is
    credited with it)."""
    calendar = ruleset.calendar
    events: dict[str, SourcedEvent] = {}
    by_child: dict[str, list[Episode]] = {}
    for episode in census.episodes:
        by_child.setdefault(episode.child_id, []).append(episode)
    known = ruleset.known_event_types
    for child_id, episodes in by_child.items():
        for item in _child_events(child_id, episodes, calendar):
            if item.event.type in known:
                events.setdefault(item.event.id, item)
    unknown = sorted({t for t, _ in EVENT_SHAPES} - known)
    skipped = (
        (
            SkippedSheet(
                "CINPlanDates",
                f"the ruleset has no {' or '.join(unknown)} event type (not in the built-in "
                "vocabulary): declare them in its event_types to keep CIN plan dates",
            ),
        )
        if unknown and census.rows["CINPlanDates"]
        else ()
    )
    return MappedReturn(
        source=SOURCE,
        reference_date=census.reference_date,
        parts=tuple(
            Part(name, "census", census.reference_date, census.rows[name]) for name in PARTS
        ),
        skipped=skipped,
        events=tuple(events.values()),
        rejected=census.rejected,
        revised=(),
        unjudged=(),
        rows_by_case=census.rows_by_child,
    )


def rules_not_evaluable(ruleset: Ruleset) -> list[NotEvaluable]:
    """The rules a CIN census cannot judge, and why."""
    known = ruleset.known_event_types
    shapes = [(t, codes) for t, codes in EVENT_SHAPES if t in known]
    return not_evaluable(ruleset, source=SOURCE, label=LABEL, shapes=shapes)


def _child_events(
    child_id: str, episodes: list[Episode], calendar: Calendar
) -> Iterator[SourcedEvent]:
    def event(
        when: Dated, event_type: str, column: str | None = None, **codes: object
    ) -> SourcedEvent:
        return SourcedEvent(
            Event(
                id=event_id(SOURCE, child_id, event_type, when.day),
                type=event_type,
                case_id=child_id,
                occurred_at=calendar.start_of_day(when.day),
                data={**codes, SOURCE_KEY: SOURCE},
            ),
            when.part,
            when.line,
            column or when.element,
        )

    for episode in episodes:
        referral = episode.referral
        if referral is not None:
            yield event(referral, "referral_received")
            if episode.nfa:
                # The census has no decision date: the referral's own day closes it with no
                # further action, which stops its assessment clock.
                yield event(
                    referral, "referral_decision_made", "ReferralNFA", outcome="no_further_action"
                )
        if episode.icpc is not None:
            yield event(episode.icpc, "icpc_held")
        for block in episode.blocks:
            yield from _block_events(block, event)
    yield from _open_and_close(episodes, event)


def _block_events(block: Block, event: Any) -> Iterator[SourcedEvent]:
    pairs: Mapping[str, tuple[tuple[str, str], ...]] = {
        "Assessments": (
            ("AssessmentActualStartDate", "assessment_started"),
            ("AssessmentAuthorisationDate", "assessment_completed"),
        ),
        "CINPlanDates": (
            ("CINPlanStartDate", "cin_plan_started"),
            ("CINPlanEndDate", "cin_plan_ended"),
        ),
        "Section47": (
            ("S47ActualStartDate", "section47_started"),
            ("DateOfInitialCPC", "icpc_held"),
        ),
        "ChildProtectionPlans": (
            ("CPPstartDate", "child_protection_plan_started"),
            ("CPPreviewDate", "cp_review_held"),
            ("CPPendDate", "child_protection_plan_ended"),
        ),
    }
    for element, event_type in pairs[block.kind]:
        for when in block.dates.get(element, ()):
            yield event(when, event_type)
    start = block.first("S47ActualStartDate")
    if block.kind == "Section47" and start is not None and block.flags.get("ICPCnotRequired"):
        # No date either: the enquiry's own start cancels the conference deadline.
        yield event(start, "section47_completed", "ICPCnotRequired", outcome="no_conference")


def _open_and_close(episodes: list[Episode], event: Any) -> Iterator[SourcedEvent]:
    """The child's involvement as the census shows it (returns.involvement_edges). Episodes
    whose referral date cannot be read cannot be placed, and close nothing."""
    dated = [
        (e.referral.day, None if e.closure is None else e.closure.day, e)
        for e in episodes
        if e.referral is not None
    ]
    for kind, _, episode in involvement_edges(dated):
        when = episode.referral if kind == "case_reopened" else episode.closure
        yield event(when, kind)
