"""Annex A imports: the workbook's events through the ordinary write path, and kept reports.

Events go through `ingest_events` like any others, in the caller's one transaction, so
obligations and alerts follow exactly as for events posted to the API, and a failure
stores nothing. The file is read before this module is called: nothing is written for a
file that cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.imports.annex_a import AnnexAWorkbook
from service.imports.mapping import (
    FIELD_HEADINGS,
    Allocation,
    ImportedEvent,
    allocation_event,
    map_workbook,
    rules_not_evaluable,
)
from service.imports.report import EventStatus, ImportReport, build_report
from service.store.alerts import enqueue_completed
from service.store.ids import sortable_id
from service.store.ingest import ingest_events
from service.store.orgs import lock_ruleset
from service.store.tables import Import
from service.store.tables import cases as cases_t

imports_t: Table = Import.__table__  # type: ignore[attr-defined]
log = logging.getLogger("caseclock.imports")
# Events per call of the write path; a case's events are never split across calls, so each
# case is re-derived once.
INGEST_CHUNK = 2000
_CASE_CHUNK = 500


async def import_annex_a(
    session: AsyncSession,
    *,
    org_id: str,
    workbook: AnnexAWorkbook,
    extracted_on: date,
    now: datetime,
) -> ImportReport:
    """Store the events a read workbook evidences, and keep the report of what happened.

    The ruleset is read under the org row's share lock, as for every write that derives.
    """
    ruleset = await lock_ruleset(session, org_id)
    calendar = ruleset.calendar
    mapped = map_workbook(workbook, ruleset=ruleset)
    moved = await _changed_allocations(session, org_id, mapped.allocations)
    imported = [
        *mapped.events,
        *(
            ImportedEvent(
                allocation_event(allocation, extracted_on, calendar),
                allocation.list_number,
                allocation.sheet,
                allocation.row,
                FIELD_HEADINGS["worker_id" if allocation.worker_id else "team_id"],
            )
            for allocation in moved
        ),
    ]
    outcomes: list[tuple[ImportedEvent, EventStatus]] = []
    for chunk in _by_case(imported):
        stored = await ingest_events(
            session, org_id, ruleset, [i.event for i in chunk], now, backfill=True
        )
        outcomes += zip(chunk, (outcome.status for outcome in stored), strict=True)
    # An import is a backfill: one summary alert in place of its cases' alerts so far.
    await enqueue_completed(session, org_id, "import.completed", now)
    report = build_report(
        import_id=sortable_id("imp_"),
        extracted_on=extracted_on,
        workbook=workbook,
        mapped=mapped,
        outcomes=outcomes,
        not_evaluable=rules_not_evaluable(ruleset),
    )
    await session.execute(
        imports_t.insert().values(
            id=report.id,
            org_id=org_id,
            extracted_on=extracted_on,
            created_at=now,
            report=report.to_json(),
        )
    )
    log.info(
        "Annex A import %s: %d lists, %d events created, %d rows rejected",
        report.id,
        len(report.lists),
        report.events_created,
        sum(item.rows_rejected for item in report.lists),
    )
    return report


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


def _by_case(imported: Sequence[ImportedEvent]) -> Iterator[list[ImportedEvent]]:
    """Chunks of about INGEST_CHUNK events, each case's events all in one chunk."""
    by_case: dict[str, list[ImportedEvent]] = {}
    for item in imported:
        by_case.setdefault(item.event.case_id, []).append(item)
    chunk: list[ImportedEvent] = []
    for events in by_case.values():
        if chunk and len(chunk) + len(events) > INGEST_CHUNK:
            yield chunk
            chunk = []
        chunk += events
    if chunk:
        yield chunk


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
