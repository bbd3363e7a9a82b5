"""What an import did, in the shape docs/imports.md gives, and what it could not judge; pure.

The report is kept, so it holds nothing a row said beyond what the import stores anyway:
headings, row numbers, counts, and for a rejected cell only that cell's own value (a used
column: a date, a yes/no code, an identifier), never another column of the row. What the
workbook cannot show (lists and columns it lacks, cells it could not read) is listed with
the rules it leaves unjudged, because those rules report nothing from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from service.domain.events import Event
from service.imports.annex_a import CHILD_FIELD, AnnexAWorkbook, Rejection, SkippedSheet
from service.imports.mapping import (
    MappedWorkbook,
    MissingColumn,
    MissingList,
    NotEvaluable,
)

EventStatus = Literal["created", "duplicate", "conflict"]


class Evidenced(Protocol):
    """An imported event and the place in its file that evidences it (Annex A's cell, a
    return's line)."""

    @property
    def event(self) -> Event: ...
    @property
    def sheet(self) -> str: ...
    @property
    def row(self) -> int: ...
    @property
    def column(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ListReport:
    """One recognised sheet: its data rows, what they became, and how many were left out (no
    usable Child Unique ID)."""

    list_number: int
    sheet: str
    rows: int
    events_created: int
    events_duplicate: int
    rows_rejected: int

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.list_number,
            "sheet": self.sheet,
            "rows": self.rows,
            "events_created": self.events_created,
            "events_duplicate": self.events_duplicate,
            "rows_rejected": self.rows_rejected,
        }


@dataclass(frozen=True, slots=True)
class ImportReport:
    id: str
    extracted_on: date
    lists: tuple[ListReport, ...]
    skipped_sheets: tuple[SkippedSheet, ...]
    missing_lists: tuple[MissingList, ...]
    missing_columns: tuple[MissingColumn, ...]
    rejected: tuple[Rejection, ...]
    rules_not_evaluable: tuple[NotEvaluable, ...]

    @property
    def events_created(self) -> int:
        return sum(item.events_created for item in self.lists)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImportReport:
        """A kept report read back (reports kept before a field existed have it empty)."""
        return cls(
            id=doc["id"],
            extracted_on=date.fromisoformat(doc["extracted_on"]),
            lists=tuple(
                ListReport(
                    item["list"],
                    item["sheet"],
                    item["rows"],
                    item["events_created"],
                    item["events_duplicate"],
                    item["rows_rejected"],
                )
                for item in doc["lists"]
            ),
            skipped_sheets=tuple(
                SkippedSheet(s["sheet"], s["reason"]) for s in doc["skipped_sheets"]
            ),
            missing_lists=tuple(
                MissingList(m["list"], m["title"], tuple(m["rules"]))
                for m in doc.get("missing_lists", ())
            ),
            missing_columns=tuple(
                MissingColumn(m["list"], m["sheet"], m["column"], tuple(m["rules"]))
                for m in doc.get("missing_columns", ())
            ),
            rejected=tuple(
                Rejection(
                    r["sheet"],
                    r["row"],
                    r["column"],
                    r["value"],
                    r["detail"],
                    rules=tuple(r.get("rules", ())),
                )
                for r in doc["rejected"]
            ),
            rules_not_evaluable=tuple(
                NotEvaluable(n["rule_id"], n["reason"]) for n in doc["rules_not_evaluable"]
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "extracted_on": self.extracted_on.isoformat(),
            "lists": [item.to_json() for item in self.lists],
            "skipped_sheets": [{"sheet": s.sheet, "reason": s.reason} for s in self.skipped_sheets],
            "missing_lists": [
                {"list": m.list_number, "title": m.title, "rules": list(m.rules)}
                for m in self.missing_lists
            ],
            "missing_columns": [
                {
                    "list": m.list_number,
                    "sheet": m.sheet,
                    "column": m.column,
                    "rules": list(m.rules),
                }
                for m in self.missing_columns
            ],
            "rejected": [
                {
                    "sheet": r.sheet,
                    "row": r.row,
                    "column": r.column,
                    "value": r.value,
                    "detail": r.detail,
                    "rules": list(r.rules),
                }
                for r in self.rejected
            ],
            "rules_not_evaluable": [
                {"rule_id": n.rule_id, "reason": n.reason} for n in self.rules_not_evaluable
            ],
        }


@dataclass(slots=True)
class OutcomeCounts:
    """What the stored events came to, per sheet, and the conflicts as rejections: added up a
    step at a time by an import, and kept between steps as JSON so a resumed import reports
    the steps done before it stopped."""

    created: dict[str, int] = field(default_factory=dict)
    duplicate: dict[str, int] = field(default_factory=dict)
    conflicts: list[Rejection] = field(default_factory=list)

    def add(self, outcomes: Iterable[tuple[Evidenced, EventStatus]]) -> None:
        for imported, status in outcomes:
            if status == "created":
                self.created[imported.sheet] = self.created.get(imported.sheet, 0) + 1
            elif status == "duplicate":
                self.duplicate[imported.sheet] = self.duplicate.get(imported.sheet, 0) + 1
            else:
                self.conflicts.append(
                    Rejection(
                        imported.sheet,
                        imported.row,
                        imported.column,
                        imported.event.id.rsplit(":", 1)[-1],
                        f"event {imported.event.id} was stored before with different content; "
                        "the stored one is kept",
                    )
                )

    def absorb(self, other: OutcomeCounts) -> None:
        """Add what another step's events came to."""
        for sheet, count in other.created.items():
            self.created[sheet] = self.created.get(sheet, 0) + count
        for sheet, count in other.duplicate.items():
            self.duplicate[sheet] = self.duplicate.get(sheet, 0) + count
        self.conflicts.extend(other.conflicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "duplicate": self.duplicate,
            "conflicts": [[r.sheet, r.row, r.column, r.value, r.detail] for r in self.conflicts],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> OutcomeCounts:
        return cls(
            dict(doc["created"]),
            dict(doc["duplicate"]),
            [Rejection(*conflict) for conflict in doc["conflicts"]],
        )


def build_report(
    *,
    import_id: str,
    extracted_on: date,
    workbook: AnnexAWorkbook,
    mapped: MappedWorkbook,
    counts: OutcomeCounts,
    not_evaluable: Sequence[NotEvaluable],
) -> ImportReport:
    """Each event counted against the sheet that evidenced it; conflicts become rejections."""
    created, duplicate, conflicts = counts.created, counts.duplicate, counts.conflicts
    left_out: dict[str, set[int]] = {}
    for rejection in mapped.rejected:
        if rejection.field == CHILD_FIELD:
            left_out.setdefault(rejection.sheet, set()).add(rejection.row)
    lists = tuple(
        ListReport(
            list_number=read.list_number,
            sheet=read.sheet,
            rows=len(read.rows) + read.rows_rejected,
            events_created=created.get(read.sheet, 0),
            events_duplicate=duplicate.get(read.sheet, 0),
            rows_rejected=len(left_out.get(read.sheet, ())),
        )
        for read in workbook.lists
    )
    order = {read.sheet: index for index, read in enumerate(workbook.lists)}
    rejected = sorted([*mapped.rejected, *conflicts], key=lambda r: (order[r.sheet], r.row))
    return ImportReport(
        id=import_id,
        extracted_on=extracted_on,
        lists=lists,
        skipped_sheets=workbook.skipped_sheets,
        missing_lists=mapped.missing_lists,
        missing_columns=mapped.missing_columns,
        rejected=tuple(rejected),
        rules_not_evaluable=tuple(not_evaluable),
    )


def report_lines(report: ImportReport) -> list[str]:
    """The report as plain-text tables, for the command line."""
    lines = [f"import {report.id}: workbook extracted on {report.extracted_on.isoformat()}", ""]
    lines += text_table(
        ("list", "sheet", "rows", "events created", "duplicates", "rows left out"),
        [
            (
                str(item.list_number),
                item.sheet,
                str(item.rows),
                str(item.events_created),
                str(item.events_duplicate),
                str(item.rows_rejected),
            )
            for item in report.lists
        ],
    )
    if report.skipped_sheets:
        lines += ["", "skipped sheets:"]
        lines += text_table(
            ("sheet", "reason"), [(s.sheet, s.reason) for s in report.skipped_sheets]
        )
    if report.missing_lists:
        lines += ["", "lists missing (the rules they would have fed):"]
        lines += text_table(
            ("list", "title", "rules"),
            [(str(m.list_number), m.title, _names(m.rules)) for m in report.missing_lists],
        )
    if report.missing_columns:
        lines += ["", "columns missing (rules not judged for the list's children):"]
        lines += text_table(
            ("list", "sheet", "column", "rules"),
            [
                (str(m.list_number), m.sheet, m.column, _names(m.rules))
                for m in report.missing_columns
            ],
        )
    if report.rejected:
        lines += ["", "rejected cells (the rest of the row still counts):"]
        lines += text_table(
            ("sheet", "row", "column", "value", "reason", "rules not judged for the child"),
            [
                (r.sheet, str(r.row), r.column, r.value, r.detail, _names(r.rules))
                for r in report.rejected
            ],
        )
    if report.rules_not_evaluable:
        lines += ["", "rules not evaluable from Annex A:"]
        lines += text_table(
            ("rule", "reason"), [(n.rule_id, n.reason) for n in report.rules_not_evaluable]
        )
    return lines


def _names(rules: Sequence[str]) -> str:
    return ", ".join(rules) or "-"


def text_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
