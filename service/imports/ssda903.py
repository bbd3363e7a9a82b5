"""Read SSDA903 return CSVs and map them to events; pure, no I/O.

Files are recognised by their columns, never by name: the episodes file by CHILD, DECOM, RNE,
DEC and REC; the reviews file by CHILD and REVIEW; the social-worker episodes file (from
2023/24) by CHILD, SW_ID, SW_DECOM and SW_DEC. The return's other files (header, UASC, OC2,
OC3, adoption, previous permanence, missing, DoLo) carry no deadline caseclock tracks and are
reported skipped; a zip of the files is opened, within bounds. Only the columns named above
are read: date of birth, UPN, postcodes and the rest stay in the files. Text is UTF-8 (with
or without a byte order mark), UTF-16 with its mark, or failing those Windows-1252, the
encoding a spreadsheet saves "CSV" in; dates are DD/MM/YYYY (YYYY-MM-DD is taken too).

A return covers the year to 31 March: its collection year is read from the file's name
(``episodes_2024.csv``, ``903_2023-24.csv``: the year to 31 March 2024), or given by the
importer. Several years' returns overlap and revise each other, and one import may carry
several: for each child, a later return is the authority over its year, so an earlier
return's episode open during that year (or begun in it) is replaced by the later one's
episodes, and every replacement that changes something is reported. Rows that cannot be
believed are reported and left out, never fatal: an episode that ends before it starts, one
that overlaps the episode before it, a date after the return's reference date, a review
outside every period of care.

Periods of care are stitched from the episodes: ``RNE`` S starts one, an episode ending with
``REC`` X1 continues into the next, any other ``REC`` ends it. The mapping, column by column,
is in docs/sources.md.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, Self, TypeVar

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
    not_evaluable,
    shown,
    worker_fault,
)

SOURCE = "ssda903"
LABEL = "SSDA903 return"
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
MAX_FILES = 60
ZIP_MAGIC = b"PK\x03\x04"
# The name `read_packed` gives its payload: its files keep their own names.
_PACKED = ""

EPISODES, REVIEWS, SOCIAL_WORKERS = "episodes", "reviews", "social workers"
# The columns that identify each file caseclock reads, and each it skips with why.
READ_KINDS: Mapping[str, frozenset[str]] = {
    EPISODES: frozenset({"CHILD", "DECOM", "RNE", "DEC", "REC"}),
    SOCIAL_WORKERS: frozenset({"CHILD", "SW_ID", "SW_DECOM", "SW_DEC"}),
    REVIEWS: frozenset({"CHILD", "REVIEW"}),
}
_NO_DEADLINE = "carries no deadline caseclock tracks"
SKIPPED_KINDS: tuple[tuple[str, frozenset[str], str], ...] = (
    (
        "missing",
        frozenset({"CHILD", "MIS_START", "MIS_END"}),
        "the vocabulary has no missing episode event, and no rule counts from one",
    ),
    ("header", frozenset({"CHILD", "SEX", "DOB", "UPN"}), f"personal details; {_NO_DEADLINE}"),
    ("UASC", frozenset({"CHILD", "DUC"}), _NO_DEADLINE),
    (
        "OC2",
        frozenset({"CHILD", "SDQ_SCORE"}),
        f"yearly outcome flags with no dates; {_NO_DEADLINE}",
    ),
    ("OC3", frozenset({"CHILD", "IN_TOUCH"}), _NO_DEADLINE),
    ("AD1", frozenset({"CHILD", "DATE_INT"}), _NO_DEADLINE),
    ("placed for adoption", frozenset({"CHILD", "DATE_PLACED"}), _NO_DEADLINE),
    ("previous permanence", frozenset({"CHILD", "PREV_PERM"}), _NO_DEADLINE),
    ("deprivation of liberty", frozenset({"CHILD", "DOLO_START"}), _NO_DEADLINE),
)
RNE_CODES = frozenset({"S", "L", "P", "T", "B", "U"})
# A new episode because the placement (or carer) changed: every code but L (legal status
# only). S, the start of care, is also the first placement's start.
PLACEMENT_CHANGES = frozenset({"S", "P", "T", "B", "U"})
CONTINUES = "X1"

_DMY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", re.ASCII)
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
# A collection year in a file name: 2024, or 2023-24 / 2023_24 / 202324 (the year to March 2024).
_YEAR = re.compile(r"(?<![0-9])(20[0-9]{2})(?:[-_ ]?([0-9]{2}))?(?![0-9])", re.ASCII)

EVENT_SHAPES: tuple[tuple[str, Mapping[str, object]], ...] = (
    ("became_looked_after", {}),
    ("placement_started", {}),
    ("ceased_looked_after", {}),
    ("cla_review_held", {}),
    ("case_allocated", {}),
)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as uploaded: its name (which may carry the collection year) and its bytes."""

    name: str
    data: bytes


# What the reader gives -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """What every row read has: where it is, whose it is, and the return it belongs to."""

    file: str
    line: int
    child_id: str
    reference_date: date


@dataclass(frozen=True, slots=True)
class EpisodeRow(Row):
    decom: date
    rne: str | None
    dec: date | None
    rec: str | None

    @property
    def start_day(self) -> date:
        return self.decom

    @property
    def end_day(self) -> date | None:
        return self.dec

    def restated_by(self, later: EpisodeRow) -> bool:
        """The same episode, ended later where this one was still open."""
        same_start = (self.decom, self.rne) == (later.decom, later.rne)
        return same_start and (self.dec is None or (self.dec, self.rec) == (later.dec, later.rec))


@dataclass(frozen=True, slots=True)
class ReviewRow(Row):
    review: date

    @property
    def start_day(self) -> date:
        return self.review

    @property
    def end_day(self) -> date | None:
        return self.review

    def restated_by(self, later: ReviewRow) -> bool:
        return self.review == later.review


@dataclass(frozen=True, slots=True)
class SocialWorkerRow(Row):
    worker_id: str
    start: date
    end: date | None

    @property
    def start_day(self) -> date:
        return self.start

    @property
    def end_day(self) -> date | None:
        return self.end

    def restated_by(self, later: SocialWorkerRow) -> bool:
        """The same worker from the same day, ended later where this one was still open."""
        same_start = (self.start, self.worker_id) == (later.start, later.worker_id)
        return same_start and (self.end is None or self.end == later.end)


@dataclass(frozen=True, slots=True)
class Returns:
    files: tuple[Part, ...]
    skipped: tuple[SkippedSheet, ...]
    episodes: tuple[EpisodeRow, ...]
    reviews: tuple[ReviewRow, ...]
    social_workers: tuple[SocialWorkerRow, ...]
    rejected: tuple[Rejection, ...]

    @property
    def reference_date(self) -> date:
        """The latest return's reference date."""
        return max(f.reference_date for f in self.files if f.reference_date is not None)


# Reading ---------------------------------------------------------------------------------


def reference_date_of(year: int) -> date:
    """The last day of the collection year named `year` (the year to 31 March)."""
    return date(year, 3, 31)


def year_in_name(name: str) -> int | None:
    """The collection year a file's name gives, if any: ``2024`` or ``2023-24`` is the year
    to 31 March 2024."""
    match = _YEAR.search(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    first = int(match.group(1))
    second = match.group(2)
    if second is not None and int(second) == (first + 1) % 100:
        return first + 1
    return first


def read_ssda903(uploads: Sequence[Upload], *, year: int | None, today: date) -> Returns:
    """The rows of the files caseclock reads, each refused value reported.

    Raises :class:`ReturnError` when nothing uploaded is a file caseclock reads, or when an
    upload is unsafe (too large, a zip that expands too far).
    """
    files = list(_unpacked(uploads))
    named = {y for f in files if (y := year_in_name(f.name)) is not None}
    fallback = year if year is not None else (named.pop() if len(named) == 1 else None)
    reader = _Reader(today)
    for upload in files:
        reader.read(upload, year_in_name(upload.name) or fallback)
    if not reader.parts:
        kinds = "; ".join(f"{kind}: {', '.join(sorted(cols))}" for kind, cols in READ_KINDS.items())
        raise ReturnError(
            "no file is one caseclock reads (recognised by their columns: "
            + kinds
            + ")"
            + _why_skipped(reader.skipped)
        )
    return Returns(
        files=tuple(reader.parts),
        skipped=tuple(reader.skipped),
        episodes=tuple(reader.episodes),
        reviews=tuple(reader.reviews),
        social_workers=tuple(reader.social_workers),
        rejected=tuple(reader.rejected),
    )


def pack(uploads: Sequence[Upload]) -> bytes:
    """Several uploaded files as one payload, so a queued import keeps them together under
    their names (a zip, stored as it came: an uploaded zip stays one, opened when read)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for upload in uploads:
            archive.writestr(upload.name, upload.data)
    return buffer.getvalue()


def read_packed(data: bytes, *, year: int | None, today: date) -> Returns:
    """The files `pack` put together, read as `read_ssda903` reads them."""
    return read_ssda903(_zip_members(Upload(_PACKED, data)), year=year, today=today)


def _why_skipped(skipped: Sequence[SkippedSheet]) -> str:
    return "".join(f"; {s.sheet}: {s.reason}" for s in skipped[:5])


def _unpacked(uploads: Sequence[Upload]) -> Iterator[Upload]:
    """The uploads, each zip replaced by its files; bounded in number and size."""
    count = 0
    total = 0
    for upload in uploads:
        members = _zip_members(upload) if upload.data.startswith(ZIP_MAGIC) else [upload]
        for member in members:
            count += 1
            total += len(member.data)
            if count > MAX_FILES:
                raise ReturnError(f"more than {MAX_FILES} files")
            if len(member.data) > MAX_FILE_BYTES:
                raise ReturnError(f"{member.name} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            if total > MAX_TOTAL_BYTES:
                raise ReturnError(f"the files come to over {MAX_TOTAL_BYTES // (1024 * 1024)} MiB")
            yield member


def _zip_members(upload: Upload) -> list[Upload]:
    """The files in a zip (folders flattened), each read no further than the size allowed,
    whatever size the archive declares."""
    try:
        with zipfile.ZipFile(io.BytesIO(upload.data)) as archive:
            infos = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and not info.filename.rsplit("/", 1)[-1].startswith(".")
            ]
            if len(infos) > MAX_FILES:
                raise ReturnError(f"{upload.name} holds more than {MAX_FILES} files")
            members: list[Upload] = []
            total = 0
            for info in infos:
                if info.flag_bits & 0x1:
                    raise ReturnError(f"{info.filename} in {upload.name} is encrypted")
                with archive.open(info) as opened:
                    data = opened.read(MAX_FILE_BYTES + 1)
                total += len(data)
                if len(data) > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                    raise ReturnError(
                        f"{upload.name} expands past a safe size "
                        f"({MAX_FILE_BYTES // (1024 * 1024)} MiB a file)"
                    )
                name = info.filename if upload.name == _PACKED else f"{upload.name}/{info.filename}"
                members.append(Upload(name, data))
            return members
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise ReturnError(f"{upload.name} is not a readable zip: {exc}") from exc
    except OSError as exc:  # a damaged member (bad CRC, truncated stream)
        raise ReturnError(f"{upload.name} is not a readable zip: {exc}") from exc


def decode(data: bytes) -> str:
    """The text of a CSV: by its byte order mark, else UTF-8, else Windows-1252.

    Raises ValueError when it is none of them (or holds NUL: not text)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    elif data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252")
    if "\x00" in text:
        raise ValueError("holds NUL characters: not a text file")
    return text


# A row's file, line, child and return.
_Where = tuple[str, int, str, date]


class _Reader:
    def __init__(self, today: date) -> None:
        self.today = today
        self.parts: list[Part] = []
        self.skipped: list[SkippedSheet] = []
        self.episodes: list[EpisodeRow] = []
        self.reviews: list[ReviewRow] = []
        self.social_workers: list[SocialWorkerRow] = []
        self.rejected: list[Rejection] = []

    def read(self, upload: Upload, year: int | None) -> None:
        try:
            rows = list(csv.reader(io.StringIO(decode(upload.data), newline="")))
        except (UnicodeDecodeError, ValueError, csv.Error) as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            self.skipped.append(SkippedSheet(upload.name, f"not a readable CSV: {reason}"))
            return
        header_at = next((i for i, row in enumerate(rows) if any(c.strip() for c in row)), None)
        if header_at is None:
            self.skipped.append(SkippedSheet(upload.name, "empty"))
            return
        columns = [cell.strip().upper() for cell in rows[header_at]]
        kind = _kind(frozenset(columns))
        if kind is None:
            self.skipped.append(SkippedSheet(upload.name, _unread_reason(frozenset(columns))))
            return
        if year is None:
            self.skipped.append(
                SkippedSheet(
                    upload.name,
                    f"a {kind} file with no collection year: name it in the file name "
                    "(e.g. episodes_2024.csv for the year to 31 March 2024) or give the year",
                )
            )
            return
        reference = reference_date_of(year)
        last, last_name = (
            (reference, "the return's reference date")
            if reference <= self.today
            else (self.today, "today")
        )
        body = [
            (header_at + 2 + i, row)
            for i, row in enumerate(rows[header_at + 1 :])
            if any(cell.strip() for cell in row)
        ]
        self.parts.append(Part(upload.name, kind, reference, len(body)))
        cells = _Cells(upload.name, columns, last, last_name, self.rejected)
        for line, row in body:
            cells.load(line, row)
            child = cells.child()
            if child is None:
                continue
            base: _Where = (upload.name, line, child, reference)
            if kind == EPISODES:
                self._episode(cells, base)
            elif kind == REVIEWS:
                review = cells.date("REVIEW", required=True)
                if review is not None:
                    self.reviews.append(ReviewRow(*base, review))
            else:
                self._social_worker(cells, base)

    def _episode(self, cells: _Cells, base: _Where) -> None:
        decom = cells.date("DECOM", required=True)
        if decom is None:
            return
        rne = cells.code("RNE", RNE_CODES)
        dec = cells.date("DEC")
        rec = cells.text("REC").upper() or None
        if dec is not None and dec < decom:
            cells.refuse(
                "DEC",
                f"the episode ends ({dec.isoformat()}) before it starts ({decom.isoformat()}); "
                "the episode is left out",
                ROW_LEFT_OUT,
            )
            return
        self.episodes.append(EpisodeRow(*base, decom, rne, dec, rec))

    def _social_worker(self, cells: _Cells, base: _Where) -> None:
        worker = cells.text("SW_ID")
        fault = worker_fault(worker) if worker else "blank: the row names no worker"
        if fault is not None:
            cells.refuse("SW_ID", f"{fault}; the row is left out", ROW_LEFT_OUT)
            return
        start = cells.date("SW_DECOM", required=True)
        if start is None:
            return
        end = cells.date("SW_DEC")
        self.social_workers.append(SocialWorkerRow(*base, worker, start, end))


def _kind(columns: frozenset[str]) -> str | None:
    return next((kind for kind, needed in READ_KINDS.items() if needed <= columns), None)


def _unread_reason(columns: frozenset[str]) -> str:
    for kind, needed, reason in SKIPPED_KINDS:
        if needed <= columns:
            return f"the {kind} file: {reason}"
    return "not a file of the SSDA903 return caseclock recognises by its columns"


@dataclass(slots=True)
class _Cells:
    """Reads one row's cells by column name, refusing (and reporting) what cannot be used."""

    file: str
    columns: list[str]
    last: date
    last_name: str
    rejected: list[Rejection]
    line: int = 0
    row: Sequence[str] = ()

    def load(self, line: int, row: Sequence[str]) -> None:
        self.line, self.row = line, row

    def text(self, column: str) -> str:
        index = self.columns.index(column)
        return self.row[index].strip() if index < len(self.row) else ""

    def child(self) -> str | None:
        child = self.text("CHILD")
        fault = child_fault(child)
        if fault is not None:
            self.refuse("CHILD", f"{fault}; the row is left out", ROW_LEFT_OUT, child)
            return None
        return child

    def date(self, column: str, *, required: bool = False) -> date | None:
        text = self.text(column)
        if not text:
            if required:
                self.refuse(column, "blank: the row has no date to place it by", ROW_LEFT_OUT)
            return None
        day = _date(text)
        fault = (
            "not a date (DD/MM/YYYY)" if day is None else date_fault(day, self.last, self.last_name)
        )
        if fault is not None:
            left_out = "; the row is left out" if required else ""
            self.refuse(column, fault + left_out, ROW_LEFT_OUT if required else None, text)
            return None
        return day

    def code(self, column: str, codes: frozenset[str]) -> str | None:
        text = self.text(column).upper()
        if text and text not in codes:
            self.refuse(column, f"not a code of {', '.join(sorted(codes))}", None, text)
            return None
        return text or None

    def refuse(self, column: str, detail: str, field: str | None, value: str | None = None) -> None:
        shown_value = shown(self.text(column) if value is None else value)
        self.rejected.append(Rejection(self.file, self.line, column, shown_value, detail, field))


def _date(text: str) -> date | None:
    match = _DMY.fullmatch(text)
    if match is not None:
        day, month, year = (int(g) for g in match.groups())
    else:
        match = _ISO.fullmatch(text)
        if match is None:
            return None
        year, month, day = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


# Mapping ---------------------------------------------------------------------------------


def map_returns(returns: Returns, *, ruleset: Ruleset) -> MappedReturn:
    """The events the returns evidence, after later returns have replaced what they revise
    and what cannot be believed has been left out (each reported)."""
    calendar = ruleset.calendar
    rejected = list(returns.rejected)
    revised: list[Rejection] = []
    covered = {
        kind: sorted(
            {f.reference_date for f in returns.files if f.kind == kind and f.reference_date}
        )
        for kind in READ_KINDS
    }
    episodes = _revise(returns.episodes, covered[EPISODES], "DECOM", revised, rejected)
    workers = _revise(
        returns.social_workers, covered[SOCIAL_WORKERS], "SW_DECOM", revised, rejected
    )
    reviews = _revise(returns.reviews, covered[REVIEWS], "REVIEW", revised, rejected)
    events: dict[str, SourcedEvent] = {}
    unknown_start: set[str] = set()
    by_child: dict[str, list[EpisodeRow]] = {}
    for episode in episodes:
        by_child.setdefault(episode.child_id, []).append(episode)
    periods: dict[str, list[_Period]] = {}
    for child, rows in by_child.items():
        stitched = _Stitcher(calendar, rejected)
        for item in stitched.run(sorted(rows, key=lambda r: r.decom)):
            events.setdefault(item.event.id, item)
        periods[child] = stitched.periods
        if stitched.periods and stitched.periods[0].start is None:
            unknown_start.add(child)
    for review in reviews:
        fault = _outside_care(review.review, periods.get(review.child_id, []))
        if fault is not None:
            rejected.append(
                Rejection(
                    review.file,
                    review.line,
                    "REVIEW",
                    review.review.strftime("%d/%m/%Y"),
                    fault,
                    ROW_LEFT_OUT,
                )
            )
            continue
        item = _event(calendar, review, "cla_review_held", review.review, "REVIEW")
        events.setdefault(item.event.id, item)
    for worker in workers:
        item = _event(
            calendar, worker, "case_allocated", worker.start, "SW_DECOM", worker_id=worker.worker_id
        )
        events.setdefault(item.event.id, item)
    rows_by_case: dict[str, int] = {}
    for row in (*returns.episodes, *returns.reviews, *returns.social_workers):
        rows_by_case[row.child_id] = rows_by_case.get(row.child_id, 0) + 1
    return MappedReturn(
        source=SOURCE,
        reference_date=returns.reference_date,
        parts=returns.files,
        skipped=returns.skipped,
        events=tuple(events.values()),
        rejected=tuple(rejected),
        revised=tuple(revised),
        unjudged=_unjudged(ruleset, unknown_start),
        rows_by_case=rows_by_case,
    )


def rules_not_evaluable(ruleset: Ruleset) -> list[NotEvaluable]:
    """The rules an SSDA903 return cannot judge, and why."""
    return not_evaluable(ruleset, source=SOURCE, label=LABEL, shapes=EVENT_SHAPES)


def _unjudged(ruleset: Ruleset, children: set[str]) -> tuple[NotEvaluable, ...]:
    """The rules opened by the start of care, for children whose care began before every
    return imported: their reviews are stored, but nothing opens the chain they belong to."""
    if not children:
        return ()
    return tuple(
        NotEvaluable(
            rule.id,
            f"{len(children)} children's periods of care began before the earliest return "
            "imported (no RNE S episode): their reviews are kept, but the chain they belong to "
            "starts only once an earlier return (or Annex A List 8) gives the day care began",
        )
        for rule in ruleset.rules
        if any(m.type == "became_looked_after" for m in rule.starts_on)
    )


def _event(
    calendar: Calendar,
    row: Row,
    event_type: str,
    day: date,
    column: str,
    *,
    worker_id: str | None = None,
) -> SourcedEvent:
    return SourcedEvent(
        Event(
            id=event_id(SOURCE, row.child_id, event_type, day),
            type=event_type,
            case_id=row.child_id,
            occurred_at=calendar.start_of_day(day),
            worker_id=worker_id,
            data={SOURCE_KEY: SOURCE},
        ),
        row.file,
        row.line,
        column,
    )


class _Revisable(Protocol):
    """A row a later return can restate: it starts on a day, may end on one, and says
    whether a later row restates it without contradicting it."""

    @property
    def file(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def child_id(self) -> str: ...
    @property
    def reference_date(self) -> date: ...
    @property
    def start_day(self) -> date: ...
    @property
    def end_day(self) -> date | None: ...
    def restated_by(self, later: Self) -> bool: ...


RowT = TypeVar("RowT", bound=_Revisable)


def _revise(
    rows: Iterable[RowT],
    years: Sequence[date],
    column: str,
    revised: list[Rejection],
    rejected: list[Rejection],
) -> list[RowT]:
    """Each child's rows as the latest return covering them gives them.

    A return is the authority over its year (1 April to its reference date): an earlier
    return's row that was open during that year, or began in it, gives way to the later
    return's rows, reported unless the later one restates it (the same start, and the same
    end or one it lacked).
    """
    by_child: dict[str, dict[date, list[RowT]]] = {}
    for row in rows:
        by_child.setdefault(row.child_id, {}).setdefault(row.reference_date, []).append(row)
    kept_all: list[RowT] = []
    for by_year in by_child.values():
        kept: list[RowT] = []
        for year in years:
            new = _unrepeated(by_year.get(year, []), column, rejected)
            year_start = date(year.year - 1, 4, 1)
            later = {row.start_day: row for row in new}
            still: list[RowT] = []
            for row in kept:
                end = row.end_day
                if end is not None and end < year_start:
                    still.append(row)
                    continue
                match = later.get(row.start_day)
                if match is None or not row.restated_by(match):
                    instead = (
                        f"{match.file} line {match.line} gives it differently"
                        if match is not None
                        else "it is not there"
                    )
                    revised.append(
                        Rejection(
                            row.file,
                            row.line,
                            column,
                            row.start_day.strftime("%d/%m/%Y"),
                            f"replaced by the return for the year to {year.isoformat()}, which "
                            f"covers it: {instead}",
                        )
                    )
            kept = still + new
        kept_all += kept
    return kept_all


def _unrepeated(rows: list[RowT], column: str, rejected: list[Rejection]) -> list[RowT]:
    """One return's rows with repeats of a start day left out: a repeat that says the same
    silently, one that differs reported (the first is kept)."""
    first: dict[date, RowT] = {}
    for row in rows:
        held = first.get(row.start_day)
        if held is None:
            first[row.start_day] = row
        elif not (held.restated_by(row) and row.restated_by(held)):
            rejected.append(
                Rejection(
                    row.file,
                    row.line,
                    column,
                    row.start_day.strftime("%d/%m/%Y"),
                    f"repeats, differently, the row at {held.file} line {held.line} that starts "
                    "the same day; that one is kept",
                    ROW_LEFT_OUT,
                )
            )
    return list(first.values())


@dataclass(slots=True)
class _Period:
    """A period of care: its first day (None when it began before every return imported)
    and its last (None while it lasts)."""

    start: date | None
    end: date | None


class _Stitcher:
    """Turns one child's episodes, in start order, into periods of care and their events."""

    def __init__(self, calendar: Calendar, rejected: list[Rejection]) -> None:
        self.calendar = calendar
        self.rejected = rejected
        self.periods: list[_Period] = []

    def run(self, rows: Sequence[EpisodeRow]) -> Iterator[SourcedEvent]:
        previous: EpisodeRow | None = None
        current: _Period | None = None
        for row in rows:
            if previous is not None and (previous.dec is None or previous.dec > row.decom):
                ends = previous.dec.strftime("%d/%m/%Y") if previous.dec else "with no end"
                self.rejected.append(
                    Rejection(
                        row.file,
                        row.line,
                        "DECOM",
                        row.decom.strftime("%d/%m/%Y"),
                        f"overlaps the episode at {previous.file} line {previous.line}, which "
                        f"ends {ends}; the episode is left out",
                        ROW_LEFT_OUT,
                    )
                )
                continue
            if row.rne == "S":
                current = _Period(row.decom, None)
                self.periods.append(current)
                yield _event(self.calendar, row, "became_looked_after", row.decom, "DECOM")
            elif current is None or current.end is not None:
                if current is not None:
                    self.rejected.append(
                        Rejection(
                            row.file,
                            row.line,
                            "RNE",
                            row.rne or "",
                            "starts after the period of care ended, but not with RNE S: its "
                            "period's start is unknown",
                        )
                    )
                current = _Period(None, None)
                self.periods.append(current)
            if row.rne in PLACEMENT_CHANGES:
                yield _event(self.calendar, row, "placement_started", row.decom, "DECOM")
            if row.dec is not None and row.rec != CONTINUES:
                current.end = row.dec
                yield _event(self.calendar, row, "ceased_looked_after", row.dec, "DEC")
            previous = row


def _outside_care(day: date, periods: Sequence[_Period]) -> str | None:
    """Why a review cannot be believed: it is outside every period of care the child's
    episodes show (None when it is inside one, or the child has no episodes to judge by)."""
    if not periods or any(
        (p.start is None or p.start <= day) and (p.end is None or day <= p.end) for p in periods
    ):
        return None
    first = periods[0].start
    if first is not None and day < first:
        return f"before the period of care began ({first.strftime('%d/%m/%Y')})"
    return "outside every period of care the episodes show"
