"""What the CIN census and SSDA903 imports share: events with the place in the file that
evidences them, the report, and the rules a source cannot judge; pure, no I/O.

Both are statutory returns an authority already produces. Unlike an Annex A workbook they hold
every date of their kind (every review, every plan), so their events carry no `sequence`: a
chain of reviews is the chain the return shows. What a return never holds (a referral
decision's time, visits, core groups) cannot be judged from it, and the built-in ruleset keeps
its events from opening those rules (`unless = {source = ...}`); the report lists every rule
the source cannot judge and why, worked out from the ruleset in force.

The report holds nothing a row said beyond what the import stores anyway: the part of the file
and its line, the element or column, and for a refused value only that value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from service.domain.events import Event
from service.domain.rules import Rule, Ruleset
from service.domain.storable import text_fault
from service.imports.annex_a import Rejection, SkippedSheet
from service.imports.mapping import (
    EARLIEST_DATE,
    MAX_ALLOCATION_ID,
    MAX_CHILD_ID,
    SOURCE_KEY,
    NotEvaluable,
)
from service.imports.report import OutcomeCounts, text_table

T = TypeVar("T")
_SAMPLE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# The `field` of a rejection that leaves its whole row out (no usable child, or no date to
# place it by).
ROW_LEFT_OUT = "row"
_MAX_SHOWN = 40


class ReturnError(Exception):
    """A file that cannot be imported at all: not one of the source's, unsafe, or unreadable.
    ``detail`` says why, for the uploader."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SourcedEvent:
    """An event and where it comes from: the part of the return (a census block, a file), the
    line, and the element or column."""

    event: Event
    sheet: str
    row: int
    column: str


@dataclass(frozen=True, slots=True)
class Part:
    """A part of a return read: a census block (every child's `Assessments`, say) or one
    SSDA903 file; its rows, and the year the return it belongs to ends on."""

    name: str
    kind: str
    reference_date: date | None
    rows: int


@dataclass(frozen=True, slots=True)
class MappedReturn:
    """A return mapped: events with unique ids, each refused value, each row a later return
    replaced, rules left unjudged for some of its children, and how many of the parts' rows
    are about each case (for progress)."""

    source: str
    reference_date: date
    parts: tuple[Part, ...]
    skipped: tuple[SkippedSheet, ...]
    events: tuple[SourcedEvent, ...]
    rejected: tuple[Rejection, ...]
    revised: tuple[Rejection, ...]
    unjudged: tuple[NotEvaluable, ...]
    rows_by_case: Mapping[str, int]


def event_id(source: str, child_id: str, event_type: str, day: date) -> str:
    """The same fact from any return (an episode still open next year, a review repeated in
    a later return) has the same id, so importing several years builds one history."""
    return f"{source}:{child_id}:{event_type}:{day.isoformat()}"


def shown(value: str) -> str:
    """A refused value as the report quotes it: short, and NUL as the symbol for it."""
    return value[:_MAX_SHOWN].replace("\x00", "\N{SYMBOL FOR NULL}")


def identifier_fault(value: str, longest: int) -> str | None:
    """Why an identifier cannot name a case or a worker (event ids are at most 200
    characters), or None."""
    if len(value) > longest:
        return f"longer than {longest} characters"
    return text_fault(value)


def child_fault(value: str) -> str | None:
    if not value:
        return "no child identifier: the row names no case"
    return identifier_fault(value, MAX_CHILD_ID)


def worker_fault(value: str) -> str | None:
    return identifier_fault(value, MAX_ALLOCATION_ID)


def date_fault(day: date, last: date, last_name: str) -> str | None:
    """Why a date cannot be believed: before 1900, or after the return's last day."""
    if day < EARLIEST_DATE:
        return "date before 1900"
    if day > last:
        return f"after {last_name} ({last.isoformat()})"
    return None


def not_evaluable(
    ruleset: Ruleset,
    *,
    source: str,
    label: str,
    shapes: Sequence[tuple[str, Mapping[str, object]]],
) -> list[NotEvaluable]:
    """The rules a source cannot judge, and why, worked out from the ruleset in force.

    `shapes` are the event types the source makes, with their codes. A rule is listed when
    the source's events would open it but are kept from it (`unless` on the source), when
    they open it but never meet it (every deadline would read as missed), or when they never
    open it at all (the return holds nothing that starts it).
    """
    made = {event_type for event_type, _ in shapes}
    found: list[NotEvaluable] = []
    for rule in ruleset.rules:
        kept_from = sorted(
            {
                event_type
                for event_type, codes in shapes
                if _opens(rule, event_type, codes)
                and not _opens(rule, event_type, {**codes, SOURCE_KEY: source})
            }
        )
        opens = sorted({t for t, codes in shapes if _opens(rule, t, {**codes, SOURCE_KEY: source})})
        met_by = list(dict.fromkeys(m.type for m in rule.met_by))
        starts = " or ".join(dict.fromkeys(m.type for m in rule.starts_on))
        if kept_from:
            reason = (
                f"the {label} holds no {' or '.join(met_by)} date to judge it by, so imported "
                f"{' and '.join(kept_from)} events do not open it "
                f'(starts_on has unless = {{{SOURCE_KEY} = "{source}"}})'
            )
        elif opens and met_by and made.isdisjoint(met_by):
            reason = (
                f"imported {' and '.join(opens)} events open it but the {label} holds no "
                f"{' or '.join(met_by)}: its deadlines would all read as missed"
            )
        elif not opens:
            reason = f"the {label} holds nothing that opens it ({starts})"
        else:
            continue
        found.append(NotEvaluable(rule.id, reason))
    return found


def involvement_edges(
    episodes: Iterable[tuple[date, date | None, T]],
) -> Iterator[tuple[str, date, T]]:
    """Where a child's involvement opens and closes, from its episodes (referral day,
    closure day or None while open, and what the caller names the episode by).

    Episodes that overlap form one span: it opens (`case_reopened`, so a case an earlier
    source closed opens again; on an open case it changes nothing) with its first referral
    and closes (`case_closed`) with its last closure, each yielded with the episode that
    gives the day. An episode closed on the day the next begins leaves the span unbroken: a
    closure that day would also cancel the clocks the new referral starts.
    """
    start: tuple[date, T] | None = None
    end: tuple[date, T] | None = None
    for referral, closure, item in sorted(episodes, key=lambda episode: episode[0]):
        if start is not None and end is not None and end[0] < referral:
            yield "case_closed", end[0], end[1]
            start = None
        if start is None:
            start = (referral, item)
            end = None if closure is None else (closure, item)
            yield "case_reopened", referral, item
        elif end is not None:
            end = None if closure is None else max(end, (closure, item), key=lambda e: e[0])
    if end is not None:
        yield "case_closed", end[0], end[1]


def _opens(rule: Rule, event_type: str, data: Mapping[str, object]) -> bool:
    sample = Event("sample", event_type, "sample", _SAMPLE_TIME, data=data)
    return any(m.matches(sample) for m in rule.starts_on)


# The report ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartReport:
    """A part of the return: its rows, what they became, and how many were left out."""

    part: str
    kind: str
    reference_date: date | None
    rows: int
    events_created: int
    events_duplicate: int
    rows_rejected: int


@dataclass(frozen=True, slots=True)
class ReturnReport:
    id: str
    source: str
    reference_date: date
    parts: tuple[PartReport, ...]
    skipped: tuple[SkippedSheet, ...]
    rejected: tuple[Rejection, ...]
    revised: tuple[Rejection, ...]
    rules_not_evaluable: tuple[NotEvaluable, ...]

    @property
    def events_created(self) -> int:
        return sum(part.events_created for part in self.parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "reference_date": self.reference_date.isoformat(),
            "parts": [
                {
                    "part": p.part,
                    "kind": p.kind,
                    "reference_date": p.reference_date and p.reference_date.isoformat(),
                    "rows": p.rows,
                    "events_created": p.events_created,
                    "events_duplicate": p.events_duplicate,
                    "rows_rejected": p.rows_rejected,
                }
                for p in self.parts
            ],
            "skipped": [{"part": s.sheet, "reason": s.reason} for s in self.skipped],
            "rejected": [_place(r) for r in self.rejected],
            "revised": [_place(r) for r in self.revised],
            "rules_not_evaluable": [
                {"rule_id": n.rule_id, "reason": n.reason} for n in self.rules_not_evaluable
            ],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ReturnReport:
        return cls(
            id=doc["id"],
            source=doc["source"],
            reference_date=date.fromisoformat(doc["reference_date"]),
            parts=tuple(
                PartReport(
                    p["part"],
                    p["kind"],
                    p["reference_date"] and date.fromisoformat(p["reference_date"]),
                    p["rows"],
                    p["events_created"],
                    p["events_duplicate"],
                    p["rows_rejected"],
                )
                for p in doc["parts"]
            ),
            skipped=tuple(SkippedSheet(s["part"], s["reason"]) for s in doc["skipped"]),
            rejected=tuple(_unplace(r) for r in doc["rejected"]),
            revised=tuple(_unplace(r) for r in doc["revised"]),
            rules_not_evaluable=tuple(
                NotEvaluable(n["rule_id"], n["reason"]) for n in doc["rules_not_evaluable"]
            ),
        )


def _place(rejection: Rejection) -> dict[str, Any]:
    return {
        "part": rejection.sheet,
        "row": rejection.row,
        "column": rejection.column,
        "value": rejection.value,
        "detail": rejection.detail,
    }


def _unplace(doc: Mapping[str, Any]) -> Rejection:
    return Rejection(doc["part"], doc["row"], doc["column"], doc["value"], doc["detail"])


def build_return_report(
    *,
    import_id: str,
    mapped: MappedReturn,
    counts: OutcomeCounts,
    not_evaluable: Iterable[NotEvaluable],
) -> ReturnReport:
    """Each event counted against the part that evidenced it; conflicts become rejections."""
    left_out: dict[str, set[int]] = {}
    for rejection in mapped.rejected:
        if rejection.field == ROW_LEFT_OUT:
            left_out.setdefault(rejection.sheet, set()).add(rejection.row)
    order = {part.name: index for index, part in enumerate(mapped.parts)}
    rejected = sorted(
        [*mapped.rejected, *counts.conflicts], key=lambda r: (order.get(r.sheet, -1), r.row)
    )
    return ReturnReport(
        id=import_id,
        source=mapped.source,
        reference_date=mapped.reference_date,
        parts=tuple(
            PartReport(
                part.name,
                part.kind,
                part.reference_date,
                part.rows,
                counts.created.get(part.name, 0),
                counts.duplicate.get(part.name, 0),
                len(left_out.get(part.name, ())),
            )
            for part in mapped.parts
        ),
        skipped=mapped.skipped,
        rejected=tuple(rejected),
        revised=mapped.revised,
        rules_not_evaluable=(*not_evaluable, *mapped.unjudged),
    )


def return_report_lines(report: ReturnReport, label: str) -> list[str]:
    """The report as plain-text tables, for the command line."""
    lines = [f"import {report.id}: {label} to {report.reference_date.isoformat()}", ""]
    lines += text_table(
        ("part", "kind", "year to", "rows", "events created", "duplicates", "rows left out"),
        [
            (
                p.part,
                p.kind,
                p.reference_date.isoformat() if p.reference_date else "-",
                str(p.rows),
                str(p.events_created),
                str(p.events_duplicate),
                str(p.rows_rejected),
            )
            for p in report.parts
        ],
    )
    if report.skipped:
        lines += ["", "skipped:"]
        lines += text_table(("part", "reason"), [(s.sheet, s.reason) for s in report.skipped])
    for title, rows in (
        ("refused (not believed; the rest still counts):", report.rejected),
        ("replaced by a later return:", report.revised),
    ):
        if rows:
            lines += ["", title]
            lines += text_table(
                ("part", "line", "column", "value", "reason"),
                [(r.sheet, str(r.row), r.column, r.value, r.detail) for r in rows],
            )
    if report.rules_not_evaluable:
        lines += ["", f"rules not evaluable from the {label}:"]
        lines += text_table(
            ("rule", "reason"), [(n.rule_id, n.reason) for n in report.rules_not_evaluable]
        )
    return lines
