"""Read an Ofsted Annex A workbook into typed rows (docs/imports.md).

Lists are recognised by their headings, never by sheet name: the header row is looked for in a
sheet's first five rows, and headings are compared in a normalised form (case-folded,
whitespace collapsed, curly quotes straightened, trailing ``?`` and ``(Y/N)`` dropped).

Only the columns caseclock uses are ever read into an object; date of birth, gender,
ethnicity, postcodes and every other column stay in the workbook, so they cannot reach logs,
reports or storage. An unreadable used cell (a bad or future date, an unknown yes/no code) or a
blank defining date is reported cell by cell and read as empty: the rest of its row still
counts, and the mapping says which rules the cell leaves unjudged for that child. Only a row
without a Child Unique ID, which names no case, is left out.

Distinguishing headings (any one identifies the list; the 2019 template's first). Lists 1, 2,
10 and 11 carry no deadline caseclock tracks: they are recognised only to be reported skipped,
by plausible 2019-template headings:

- List 1, Contacts (skipped): "Date of Contact", "Contact Source"
- List 2, Early Help (skipped): "Organisation completing assessment",
  "Early Help Assessment Start Date"
- List 3, Referrals: "Referral NFA?", "Referral No Further Action"
- List 4, Assessments: "Continuous Assessment Start Date"
- List 5, Section 47 enquiries and ICPCs: "Strategy discussion initiating Section 47 Enquiry
  Start Date", "Section 47 Enquiry Start Date"
- List 6, Children in need: "CIN Start Date", "Child in Need Start Date"
- List 7, Child protection: "Child Protection Plan Start Date", "CP Plan Start Date"
- List 8, Children in care: "Date Started to be Looked After", "Date Started Being Looked After"
- List 9, Care leavers: "Eligibility Category"
- List 10, Adoption (skipped): "Date of Decision that Child Should be Placed for Adoption",
  "Date of Placement Order", "Date of Adoption Order"
- List 11, Adopters (skipped): "Date Enquiry Received", "Date Stage 1 Started"

List 2's bare "Assessment start date" is deliberately not among them: a List 4 that shortened
its heading to that would otherwise be skipped. Where a header row names several lists, a
tracked list (3-9) wins over a skipped one, and among tracked lists the one whose columns match
best; List 11, which also has List 10's "Date of Adoption Order", is the skipped list naming
most of its own. A header row naming no distinguishing heading but the Child Unique ID and
another column a tracked list uses (a renamed "Date Started to be Looked After" leaves the
reviews, visits and end of care) is taken for the list it matches best, so the report names the
heading it lacks rather than recognising nothing. The accepted variants of every used column
are in ``_LISTS`` below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar

from service.imports.workbook import CellValue, Sheet, WorkbookError, read_sheets

HEADER_SEARCH_ROWS = 5
_MAX_SHOWN_VALUE = 200


# Rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnexARow:
    """Fields every list shares; ``row`` is the 1-based Excel row number."""

    sheet: str
    row: int
    child_id: str
    team_id: str | None
    worker_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferralRow(AnnexARow):
    """List 3."""

    referral_date: date | None
    referral_nfa: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AssessmentRow(AnnexARow):
    """List 4."""

    assessment_start: date | None
    assessment_authorised: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Section47Row(AnnexARow):
    """List 5."""

    strategy_discussion: date | None
    icpc_unnecessary: bool | None
    icpc_date: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildInNeedRow(AnnexARow):
    """List 6."""

    cin_start: date | None
    last_seen: date | None
    cin_closure: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildProtectionRow(AnnexARow):
    """List 7."""

    cp_plan_start: date | None
    last_statutory_visit: date | None
    latest_review_conference: date | None
    cp_plan_end: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildInCareRow(AnnexARow):
    """List 8."""

    looked_after_start: date | None
    latest_statutory_review: date | None
    last_social_work_visit: date | None
    ceased_looked_after: date | None
    latest_placement_start: date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CareLeaverRow(AnnexARow):
    """List 9; the pathway plan review column exists only in templates since 2023."""

    latest_pathway_plan_review: date | None


RowT = TypeVar("RowT", bound=AnnexARow)


# Results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """One cell caseclock could not use.

    ``column`` is the heading as written in the file; ``field`` the row field the cell would
    have filled (None for a problem with a whole event, such as a conflict); ``rules`` the
    rules it leaves unjudged for the row's child, which the mapping works out from the
    ruleset.
    """

    sheet: str
    row: int
    column: str
    value: str
    detail: str
    field: str | None = None
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedSheet:
    sheet: str
    reason: str


@dataclass(frozen=True, slots=True)
class ListRead:
    """One recognised list (3-9).

    ``header_row`` is the 1-based Excel row of the headings. ``missing_fields`` names the
    optional fields whose column the sheet lacks: their values are ``None`` for every row,
    which says nothing about the child, so rules that need them cannot be judged.
    """

    list_number: int
    sheet: str
    header_row: int
    rows: tuple[AnnexARow, ...]
    rejected: tuple[Rejection, ...]
    missing_fields: tuple[str, ...]

    @property
    def rows_rejected(self) -> int:
        """Rows left out: those without a usable Child Unique ID."""
        return len({r.row for r in self.rejected if r.field == CHILD_FIELD})


@dataclass(frozen=True, slots=True)
class AnnexAWorkbook:
    extracted_on: date
    lists: tuple[ListRead, ...]
    skipped_sheets: tuple[SkippedSheet, ...]

    @property
    def rejected(self) -> tuple[Rejection, ...]:
        return tuple(rejection for read in self.lists for rejection in read.rejected)

    def rows_of(self, kind: type[RowT]) -> tuple[RowT, ...]:
        """Every accepted row of one type, across sheets, in workbook order."""
        return tuple(row for read in self.lists for row in read.rows if isinstance(row, kind))


# Cell parsing ----------------------------------------------------------------------------


class _CellError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_Parser = Callable[[CellValue, date], str | bool | date | None]

_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})", re.ASCII)
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_YES_NO = re.compile(r"(?:[ab]\)\s*)?(yes|y|no|n)")


def _blank(value: CellValue) -> bool:
    return isinstance(value, str) and not value.strip()


def _parse_date(value: CellValue, extracted_on: date) -> date | None:
    """Excel dates, ``DD/MM/YYYY`` (never US order) and ``YYYY-MM-DD``.

    Bare numbers are refused rather than read as date serials: without the cell's date
    format the epoch (1900 or 1904) is a guess.
    """
    if _blank(value):
        return None
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_date_text(value.strip())
    else:
        raise _CellError("not a date")
    if parsed > extracted_on:
        raise _CellError("date after the extraction date")
    return parsed


def _parse_date_text(text: str) -> date:
    if match := _DMY.fullmatch(text):
        day, month, year = (int(part) for part in match.groups())
    elif match := _ISO.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise _CellError("not a date (expected DD/MM/YYYY or YYYY-MM-DD)")
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise _CellError("not a valid calendar date") from exc


def _parse_yes_no(value: CellValue, extracted_on: date) -> bool | None:
    if isinstance(value, bool):
        return value
    if _blank(value):
        return None
    if isinstance(value, str) and (match := _YES_NO.fullmatch(" ".join(value.casefold().split()))):
        return match.group(1).startswith("y")
    raise _CellError("not a yes/no value (expected Yes, No, Y, N, a) Yes or b) No)")


def _parse_identifier(value: CellValue, extracted_on: date) -> str | None:
    """Text with its spaces normalised; whole numbers (how Excel holds numeric ids) without a
    ``.0``.

    Extracts are typed and pasted by hand: a name may carry a non-breaking or other Unicode
    space in one file and a plain one in the next. Trimmed, with every run of spaces made one
    plain space, the same worker is the same id in both, so no false reallocation is recorded.
    """
    if isinstance(value, str):
        return " ".join(value.split()) or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise _CellError("not an identifier")


def _shown(value: CellValue) -> str:
    """The cell as a person would read it in Excel, cut short."""
    if isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text[:_MAX_SHOWN_VALUE]


# List definitions ------------------------------------------------------------------------


_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
    }
)
_SUFFIXES = re.compile(r"(?:\s*(?:\?|\(\s*y\s*/\s*n\s*\)))+$")


def _normalise(heading: str) -> str:
    collapsed = " ".join(heading.translate(_QUOTES).casefold().split())
    return _SUFFIXES.sub("", collapsed)


@dataclass(frozen=True, slots=True)
class _Column:
    field: str
    parse: _Parser
    headings: tuple[str, ...]
    required: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """Normalised headings, in order of preference."""
        return tuple(dict.fromkeys(_normalise(heading) for heading in self.headings))


@dataclass(frozen=True, slots=True)
class _ListSpec:
    number: int
    title: str
    distinguishing: tuple[str, ...]
    row_type: type[AnnexARow] | None = None  # None: recognised, then skipped
    columns: tuple[_Column, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(_normalise(heading) for heading in self.distinguishing)

    @property
    def label(self) -> str:
        return f"List {self.number} ({self.title})"


def _date(field: str, *headings: str, required: bool = False) -> _Column:
    return _Column(field, _parse_date, headings, required)


CHILD_FIELD = "child_id"
# Fields every list has: they say nothing about which list a header row is.
_SHARED_FIELDS = frozenset({CHILD_FIELD, "team_id", "worker_id"})

_CHILD = _Column(
    CHILD_FIELD,
    _parse_identifier,
    (
        "Child Unique ID",
        "Child's Unique ID",
        "Child Unique Identifier",
        "Unique Child ID",
        "Child ID",
    ),
    required=True,
)
_TEAM = _Column("team_id", _parse_identifier, ("Allocated Team", "Team"))
_WORKER = _Column(
    "worker_id", _parse_identifier, ("Allocated Worker", "Allocated Social Worker", "Worker")
)
_ADVISOR = _Column(
    "worker_id",
    _parse_identifier,
    (
        *_WORKER.headings,
        "Allocated Personal Advisor",
        "Allocated Personal Adviser",
        "Personal Advisor",
        "Personal Adviser",
    ),
)

_LISTS: tuple[_ListSpec, ...] = (
    _ListSpec(
        3,
        "Referrals",
        ("Referral NFA?", "Referral No Further Action"),
        ReferralRow,
        (
            _CHILD,
            _date("referral_date", "Date of referral", "Referral Date", required=True),
            _Column(
                "referral_nfa",
                _parse_yes_no,
                ("Referral NFA?", "Referral No Further Action"),
            ),
            _TEAM,
            _WORKER,
        ),
    ),
    _ListSpec(
        4,
        "Assessments",
        ("Continuous Assessment Start Date",),
        AssessmentRow,
        (
            _CHILD,
            _date("assessment_start", "Continuous Assessment Start Date", required=True),
            _date(
                "assessment_authorised",
                "Continuous Assessment Date of Authorisation",
                "Continuous Assessment Authorisation Date",
                "Date of Authorisation",
            ),
            _TEAM,
            _WORKER,
        ),
    ),
    _ListSpec(
        5,
        "Section 47 enquiries and ICPCs",
        (
            "Strategy discussion initiating Section 47 Enquiry Start Date",
            "Section 47 Enquiry Start Date",
        ),
        Section47Row,
        (
            _CHILD,
            _date(
                "strategy_discussion",
                "Strategy discussion initiating Section 47 Enquiry Start Date",
                "Section 47 Enquiry Start Date",
                required=True,
            ),
            _Column(
                "icpc_unnecessary",
                _parse_yes_no,
                (
                    "Was an Initial Child Protection Conference deemed unnecessary?",
                    "Initial Child Protection Conference deemed unnecessary",
                    "ICPC deemed unnecessary",
                ),
            ),
            _date(
                "icpc_date",
                "Date of Initial Child Protection Conference",
                "Date of ICPC",
                "ICPC Date",
            ),
            _TEAM,
            _WORKER,
        ),
    ),
    _ListSpec(
        6,
        "Children in need",
        ("CIN Start Date", "Child in Need Start Date"),
        ChildInNeedRow,
        (
            _CHILD,
            _date("cin_start", "CIN Start Date", "Child in Need Start Date", required=True),
            _date("last_seen", "Date Child Was Last Seen", "Date Child Last Seen"),
            _date("cin_closure", "CIN Closure Date", "Child in Need Closure Date"),
            _TEAM,
            _WORKER,
        ),
    ),
    _ListSpec(
        7,
        "Child protection",
        ("Child Protection Plan Start Date", "CP Plan Start Date"),
        ChildProtectionRow,
        (
            _CHILD,
            _date(
                "cp_plan_start",
                "Child Protection Plan Start Date",
                "CP Plan Start Date",
                required=True,
            ),
            _date(
                "last_statutory_visit",
                "Date of the Last Statutory Visit",
                "Date of Last Statutory Visit",
            ),
            _date(
                "latest_review_conference",
                "Date of latest review conference",
                "Date of the latest review conference",
                "Latest Review Conference Date",
            ),
            _date("cp_plan_end", "Child Protection Plan End Date", "CP Plan End Date"),
            _TEAM,
            _WORKER,
        ),
    ),
    _ListSpec(
        8,
        "Children in care",
        ("Date Started to be Looked After", "Date Started Being Looked After"),
        ChildInCareRow,
        (
            _CHILD,
            _date(
                "looked_after_start",
                "Date Started to be Looked After",
                "Date Started Being Looked After",
                required=True,
            ),
            _date(
                "latest_statutory_review",
                "Date of Latest Statutory Review",
                "Date of Last Statutory Review",
            ),
            _date(
                "last_social_work_visit",
                "Date of Last Social Work Visit",
                "Date of Last Social Worker Visit",
            ),
            _date(
                "ceased_looked_after",
                "Date Ceased to be Looked After",
                "Date Ceased Being Looked After",
            ),
            _date(
                "latest_placement_start",
                "Start Date of Most Recent Placement",
                "Start Date of Latest Placement",
            ),
            _TEAM,
            _WORKER,
        ),
    ),
    _ListSpec(
        9,
        "Care leavers",
        ("Eligibility Category",),
        CareLeaverRow,
        (
            _CHILD,
            _date(
                "latest_pathway_plan_review",
                "Latest Pathway Plan Review Date",
                "Date of Latest Pathway Plan Review",
            ),
            _TEAM,
            _ADVISOR,
        ),
    ),
)

_SKIPPED_LISTS: tuple[_ListSpec, ...] = (
    _ListSpec(1, "Contacts", ("Date of Contact", "Contact Source")),
    _ListSpec(
        2,
        "Early Help",
        ("Organisation completing assessment", "Early Help Assessment Start Date"),
    ),
    _ListSpec(
        10,
        "Adoption",
        (
            "Date of Decision that Child Should be Placed for Adoption",
            "Date of Placement Order",
            "Date of Adoption Order",
        ),
    ),
    _ListSpec(11, "Adopters", ("Date Enquiry Received", "Date Stage 1 Started")),
)


# Each tracked list's title and the fields its rows hold.
LIST_TITLES: Mapping[int, str] = {spec.number: spec.title for spec in _LISTS}
LIST_FIELDS: Mapping[int, tuple[str, ...]] = {
    spec.number: tuple(c.field for c in spec.columns) for spec in _LISTS
}


# Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bound:
    """A used column found in the header row."""

    column: _Column
    index: int
    heading: str


def read_annex_a(data: bytes, *, extracted_on: date) -> AnnexAWorkbook:
    """Read the lists caseclock tracks (3-9) from an Annex A workbook's bytes.

    Raises :class:`WorkbookError` when the file is not a safe, readable .xlsx, or when no
    sheet holds a list with tracked deadlines (the detail names the headings expected).
    """
    return _read(read_sheets(data), extracted_on)


def check_annex_a(data: bytes, *, extracted_on: date) -> None:
    """Raise :class:`WorkbookError` for a file :func:`read_annex_a` would refuse, reading only
    the rows a header is looked for in: an upload is answered at once, and read whole by the
    import's job."""
    _read(read_sheets(data, rows=HEADER_SEARCH_ROWS), extracted_on)


def _read(sheets: Iterable[Sheet], extracted_on: date) -> AnnexAWorkbook:
    lists: list[ListRead] = []
    skipped: list[SkippedSheet] = []
    for sheet in sheets:
        outcome = _read_sheet(sheet, extracted_on)
        if isinstance(outcome, ListRead):
            lists.append(outcome)
        else:
            skipped.append(outcome)
    if not lists:
        raise WorkbookError(_nothing_found(skipped))
    return AnnexAWorkbook(
        extracted_on=extracted_on, lists=tuple(lists), skipped_sheets=tuple(skipped)
    )


def _read_sheet(sheet: Sheet, extracted_on: date) -> ListRead | SkippedSheet:
    found = _find_header(sheet.rows)
    if found is None:
        return SkippedSheet(sheet.name, "no Annex A list recognised")
    spec, header_index, headings = found
    if spec.row_type is None:
        return SkippedSheet(sheet.name, f"{spec.label}: carries no deadline caseclock tracks")
    bound = [
        _Bound(column, *headings[key])
        for column in spec.columns
        if (key := next((k for k in column.keys if k in headings), None)) is not None
    ]
    present = {item.column.field for item in bound}
    absent_required = [c.headings[0] for c in spec.columns if c.required and c.field not in present]
    if absent_required:
        missing = ", ".join(absent_required)
        return SkippedSheet(sheet.name, f"{spec.label} recognised, but lacks {missing}")
    missing_fields = tuple(c.field for c in spec.columns if c.field not in present)
    rows: list[AnnexARow] = []
    rejected: list[Rejection] = []
    for index in range(header_index + 1, len(sheet.rows)):
        cells = sheet.rows[index]
        if all(_blank(cell) for cell in cells):
            continue
        row, problems = _read_row(sheet.name, index + 1, cells, spec.row_type, bound, extracted_on)
        if row is not None:
            rows.append(row)
        rejected.extend(problems)
    return ListRead(
        list_number=spec.number,
        sheet=sheet.name,
        header_row=header_index + 1,
        rows=tuple(rows),
        rejected=tuple(rejected),
        missing_fields=missing_fields,
    )


def _find_header(
    rows: Sequence[Sequence[CellValue]],
) -> tuple[_ListSpec, int, Mapping[str, tuple[int, str]]] | None:
    """The first of the first rows that names a list, with its headings by normalised key."""
    for index, cells in enumerate(rows[:HEADER_SEARCH_ROWS]):
        headings: dict[str, tuple[int, str]] = {}
        for column, cell in enumerate(cells):
            if isinstance(cell, str) and cell.strip():
                headings.setdefault(_normalise(cell), (column, cell.strip()))
        spec = _recognise(headings)
        if spec is not None:
            return spec, index, headings
    return None


def _recognise(headings: Mapping[str, object]) -> _ListSpec | None:
    def named(keys: Sequence[str]) -> bool:
        return any(key in headings for key in keys)

    tracked = [spec for spec in _LISTS if named(spec.keys)]
    if tracked:
        # Several distinguishing headings in one row: the list whose columns match best.
        return max(tracked, key=lambda spec: sum(named(c.keys) for c in spec.columns))
    # List 11 also has List 10's "Date of Adoption Order": the list naming most of its own.
    skipped = [spec for spec in _SKIPPED_LISTS if named(spec.keys)]
    if skipped:
        return max(skipped, key=lambda spec: sum(key in headings for key in spec.keys))
    if not named(_CHILD.keys):
        return None
    # No distinguishing heading: the tracked list most of whose own columns are there.
    score, spec = max(
        (
            (sum(named(c.keys) for c in spec.columns if c.field not in _SHARED_FIELDS), spec)
            for spec in _LISTS
        ),
        key=lambda scored: scored[0],
    )
    return spec if score else None


def _read_row(
    sheet: str,
    row: int,
    cells: Sequence[CellValue],
    row_type: type[AnnexARow],
    bound: Sequence[_Bound],
    extracted_on: date,
) -> tuple[AnnexARow | None, list[Rejection]]:
    """The row, each unreadable or missing cell read as empty and reported; no row without a
    Child Unique ID, which names no case to file the rest under."""
    # Any: the values' types follow each column's parser, which the row type's fields match.
    values: dict[str, Any] = dict.fromkeys(field.name for field in fields(row_type))
    problems: list[Rejection] = []
    for item in bound:
        field = item.column.field
        raw: CellValue = cells[item.index] if item.index < len(cells) else ""
        try:
            value = item.column.parse(raw, extracted_on)
        except _CellError as exc:
            problems.append(Rejection(sheet, row, item.heading, _shown(raw), exc.detail, field))
            continue
        if value is None and item.column.required:
            detail = f"missing {item.heading}"
            problems.append(Rejection(sheet, row, item.heading, "", detail, field))
        values[field] = value
    if values[CHILD_FIELD] is None:
        return None, problems
    values.update(sheet=sheet, row=row)
    return row_type(**values), problems


def _nothing_found(skipped: Sequence[SkippedSheet]) -> str:
    expected = "; ".join(
        f"{spec.label}: "
        + ", ".join(
            dict.fromkeys(
                [c.headings[0] for c in spec.columns if c.required] + [spec.distinguishing[0]]
            )
        )
        for spec in _LISTS
    )
    seen = "; ".join(f"sheet '{s.sheet}': {s.reason}" for s in skipped) or "no sheets"
    return (
        f"no Annex A list with tracked deadlines found. Expected a header row, within the first "
        f"{HEADER_SEARCH_ROWS} rows of a sheet, with the headings of {expected}. Found: {seen}"
    )
