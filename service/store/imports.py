"""Imports (Annex A workbooks, CIN census files, SSDA903 returns): the file's events through
the ordinary write path, a chunk of cases at a time, and kept reports.

Events go through `ingest_events` like any others, so obligations and alerts follow exactly as
for events posted to the API. An import runs as a job (service/jobs/background.py): the file
is read and mapped once (`plan_import`, pure), then written by `import_chunk`, each chunk a
transaction the job commits with its checkpoint: the last case written and the counts so far.
Cases are taken in id order and a case's events are never split across chunks, so each case is
re-derived once, is at any moment wholly imported or untouched, and a resumed import starts
after the last chunk that committed. Chunks that store nothing (a file imported before) share
a step, up to a time limit: they only count duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.rules import Ruleset
from service.imports import cin_census, ssda903
from service.imports.annex_a import AnnexAWorkbook
from service.imports.mapping import (
    FIELD_HEADINGS,
    Allocation,
    ImportedEvent,
    NotEvaluable,
    allocation_event,
    map_workbook,
    rules_not_evaluable,
)
from service.imports.report import Evidenced, ImportReport, OutcomeCounts, build_report
from service.imports.returns import MappedReturn, ReturnReport, build_return_report
from service.store.alerts import enqueue_completed
from service.store.completions import Tally
from service.store.ids import sortable_id
from service.store.ingest import ingest_events
from service.store.jobs import Claim, JobKind, get_job, queue_job
from service.store.tables import Import
from service.store.tables import cases as cases_t

imports_t: Table = Import.__table__  # type: ignore[attr-defined]
log = logging.getLogger("caseclock.imports")
# Events per chunk (a case's allocation counted as one): one transaction of the write path.
INGEST_CHUNK = 2000
_CASE_CHUNK = 500
# Each source's job, and the source each job kind imports.
IMPORT_KINDS: Mapping[str, JobKind] = {
    "annex-a": "annex-a-import",
    cin_census.SOURCE: "cin-census-import",
    ssda903.SOURCE: "ssda903-import",
}
SOURCES: Mapping[str, str] = {kind: source for source, kind in IMPORT_KINDS.items()}
Report = ImportReport | ReturnReport


@dataclass(frozen=True, slots=True)
class CaseImport:
    """One case's share of an import: the events the file evidences for it, its allocation
    as the file gives it, and how many of the file's rows are about it."""

    case_id: str
    events: tuple[Evidenced, ...]
    allocation: Allocation | None
    rows: int


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """A read file mapped under a ruleset: what each case gets, in case id order, and how
    its report is made (from the import's id, the counts and the ruleset in force) once
    every chunk is in."""

    cases: tuple[CaseImport, ...]
    rows_total: int
    report: Callable[[str, OutcomeCounts, Ruleset], Report]

    @property
    def rows_without_case(self) -> int:
        """Rows about no case this import writes (left out, or evidencing nothing)."""
        return self.rows_total - sum(case.rows for case in self.cases)

    def chunks_after(self, after: str | None) -> Iterator[list[CaseImport]]:
        """Chunks of about INGEST_CHUNK events, of the cases whose id sorts after `after`."""
        chunk: list[CaseImport] = []
        size = 0
        for case in self.cases:
            if after is not None and case.case_id <= after:
                continue
            weight = len(case.events) + 1
            if chunk and size + weight > INGEST_CHUNK:
                yield chunk
                chunk, size = [], 0
            chunk.append(case)
            size += weight
        if chunk:
            yield chunk


def plan_import(workbook: AnnexAWorkbook, ruleset: Ruleset) -> ImportPlan:
    """Map the workbook and group what it evidences by case; pure, and the CPU-heavy half of
    an import with the reading, so it runs away from the event loop."""
    mapped = map_workbook(workbook, ruleset=ruleset)
    rows: dict[str, int] = {}
    for read in workbook.lists:
        for row in read.rows:
            rows[row.child_id] = rows.get(row.child_id, 0) + 1

    def report(import_id: str, counts: OutcomeCounts, ruleset: Ruleset) -> Report:
        return build_report(
            import_id=import_id,
            extracted_on=workbook.extracted_on,
            workbook=workbook,
            mapped=mapped,
            counts=counts,
            not_evaluable=rules_not_evaluable(ruleset),
        )

    return ImportPlan(
        cases=_cases(mapped.events, mapped.allocations, rows),
        rows_total=sum(len(read.rows) + read.rows_rejected for read in workbook.lists),
        report=report,
    )


def plan_return(
    mapped: MappedReturn, not_evaluable: Callable[[Ruleset], list[NotEvaluable]]
) -> ImportPlan:
    """A mapped CIN census or SSDA903 return grouped by case; pure, as `plan_import`."""

    def report(import_id: str, counts: OutcomeCounts, ruleset: Ruleset) -> Report:
        return build_return_report(
            import_id=import_id,
            mapped=mapped,
            counts=counts,
            not_evaluable=not_evaluable(ruleset),
        )

    return ImportPlan(
        cases=_cases(mapped.events, (), mapped.rows_by_case),
        rows_total=sum(part.rows for part in mapped.parts),
        report=report,
    )


def _cases(
    evidenced: Sequence[Evidenced], allocations: Sequence[Allocation], rows: Mapping[str, int]
) -> tuple[CaseImport, ...]:
    events: dict[str, list[Evidenced]] = {}
    for item in evidenced:
        events.setdefault(item.event.case_id, []).append(item)
    allocated = {allocation.child_id: allocation for allocation in allocations}
    return tuple(
        CaseImport(c, tuple(events.get(c, ())), allocated.get(c), rows.get(c, 0))
        for c in sorted(events.keys() | allocated.keys())
    )


async def import_chunk(
    session: AsyncSession,
    *,
    org_id: str,
    ruleset: Ruleset,
    chunk: Sequence[CaseImport],
    extracted_on: date,
    now: datetime,
    counts: OutcomeCounts,
    completions: Tally,
) -> bool:
    """Store a chunk's events and the allocations that changed, counting what became of them,
    and what they did to the completions rollup in `completions` for the caller to add;
    whether it stored anything (a chunk of a file imported before stores nothing, and writes
    nothing but its share of the counts).

    A backfill: no alert for the states its cases reached before the import was posted.
    """
    moved = await _changed_allocations(
        session, org_id, [case.allocation for case in chunk if case.allocation is not None]
    )
    imported: list[Evidenced] = [
        *(item for case in chunk for item in case.events),
        *(
            ImportedEvent(
                allocation_event(allocation, extracted_on, ruleset.calendar),
                allocation.list_number,
                allocation.sheet,
                allocation.row,
                FIELD_HEADINGS["worker_id" if allocation.worker_id else "team_id"],
            )
            for allocation in moved
        ),
    ]
    stored = await ingest_events(
        session,
        org_id,
        ruleset,
        [i.event for i in imported],
        now,
        backfill=True,
        completions=completions,
    )
    counts.add(zip(imported, (outcome.status for outcome in stored), strict=True))
    return any(outcome.status == "created" for outcome in stored)


async def finish_import(
    session: AsyncSession,
    *,
    org_id: str,
    import_id: str,
    plan: ImportPlan,
    ruleset: Ruleset,
    counts: OutcomeCounts,
    now: datetime,
) -> Report:
    """Raise the import's one summary alert and keep its report, once every chunk is in."""
    # An import is a backfill: one summary alert in place of its cases' alerts so far.
    await enqueue_completed(session, org_id, "import.completed", now)
    report = plan.report(import_id, counts, ruleset)
    kept_on = report.extracted_on if isinstance(report, ImportReport) else report.reference_date
    await session.execute(
        imports_t.insert().values(
            id=report.id,
            org_id=org_id,
            extracted_on=kept_on,
            created_at=now,
            report=report.to_json(),
        )
    )
    log.info(
        "import %s: %d events created, %d values refused",
        report.id,
        report.events_created,
        len(report.rejected),
    )
    return report


async def queue_import(
    session: AsyncSession,
    *,
    org_id: str,
    data: bytes,
    extracted_on: date,
    now: datetime,
    claimed_until: datetime | None = None,
    source: str = "annex-a",
    year: int | None = None,
) -> Claim:
    """Queue the import of a file already checked to be importable: a workbook extracted on
    `extracted_on`, or a return whose reference date it is (an SSDA903 upload's files packed
    in one zip, with the collection year given for files whose names have none).

    Its events are written as received `now`. With `claimed_until`, the caller runs the import
    itself under the claim returned (store/jobs.py, queue_job).
    """
    params: dict[str, Any] = {"extracted_on": extracted_on.isoformat(), "now": now.isoformat()}
    if year is not None:
        params["year"] = year
    return await queue_job(
        session,
        job_id=sortable_id("imp_"),
        org_id=org_id,
        kind=IMPORT_KINDS[source],
        now=now,
        params=params,
        payload=data,
        claimed_until=claimed_until,
    )


async def import_status(
    session: AsyncSession, org_id: str, import_id: str
) -> dict[str, Any] | None:
    """An import as a person polling it sees it: state, progress, and the report once done.
    Imports kept from before they ran in the background have only their report."""
    job = await get_job(session, org_id, import_id, tuple(IMPORT_KINDS.values()))
    kept = (
        None
        if job is not None and job.state != "done"
        else await get_import(session, org_id, import_id)
    )
    report = None if kept is None else {k: v for k, v in kept.items() if k != "created_at"}
    if job is None:
        if report is None or kept is None:
            return None
        rows = sum(item["rows"] for item in report.get("lists", report.get("parts", ())))
        return {
            "id": import_id,
            "source": report.get("source", "annex-a"),
            "state": "done",
            "extracted_on": report["extracted_on"],
            "created_at": kept["created_at"],
            "started_at": kept["created_at"],
            "finished_at": kept["created_at"],
            "progress": {
                "rows_done": rows,
                "rows_total": rows,
                "cases_done": 0,
                "cases_total": None,
            },
            "report": report,
            "problem": None,
        }
    return {
        "id": job.id,
        "source": SOURCES[job.kind],
        "state": job.state,
        "extracted_on": job.params["extracted_on"],
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": {
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "cases_done": job.cases_done,
            "cases_total": job.cases_total,
        },
        "report": report,
        "problem": job.problem,
    }


async def list_imports(
    session: AsyncSession, org_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    """Kept reports, newest first; `after` is the (created_at, id) of the last one seen."""
    t = imports_t.c
    query = select(t.created_at, t.id, t.report).where(t.org_id == org_id)
    if after is not None:
        at, after_id = after
        query = query.where(or_(t.created_at < at, and_(t.created_at == at, t.id < after_id)))
    rows = await session.execute(query.order_by(t.created_at.desc(), t.id.desc()).limit(limit))
    return [{"created_at": row.created_at, **row.report} for row in rows]


async def get_import(session: AsyncSession, org_id: str, import_id: str) -> dict[str, Any] | None:
    t = imports_t.c
    row = (
        await session.execute(
            select(t.created_at, t.report).where(t.org_id == org_id, t.id == import_id)
        )
    ).one_or_none()
    return None if row is None else {"created_at": row.created_at, **row.report}


async def _changed_allocations(
    session: AsyncSession, org_id: str, allocations: Sequence[Allocation]
) -> list[Allocation]:
    """The allocations that would change a case: a later file repeating the same allocation
    adds nothing, and a blank worker or team leaves the case's own as it is."""
    current: dict[str, tuple[str | None, str | None]] = {}
    ids = [a.child_id for a in allocations]
    for start in range(0, len(ids), _CASE_CHUNK):
        rows = await session.execute(
            select(cases_t.c.case_id, cases_t.c.worker_id, cases_t.c.team_id).where(
                cases_t.c.org_id == org_id, cases_t.c.case_id.in_(ids[start : start + _CASE_CHUNK])
            )
        )
        current.update({row.case_id: (row.worker_id, row.team_id) for row in rows})
    changed = []
    for allocation in allocations:
        worker_id, team_id = current.get(allocation.child_id, (None, None))
        if (allocation.worker_id or worker_id) != worker_id or (
            allocation.team_id or team_id
        ) != team_id:
            changed.append(allocation)
    return changed
