"""Sources an organisation syncs from: its Standard Safeguarding Dataset (docs/sources.md).

`PUT /v1/sources/ssd` says where the SSD is read (a read-only database URL and schema, or a
folder or zip of CSVs on the server), which involvement roles allocate a case and when it
syncs. `POST /v1/sources/ssd/sync` queues a sync (202, poll `Location`). The database URL's
password is kept to connect with and never shown: answers give the URL with `***` for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.api.deps import Admin, ClockDep, Reader, SessionDep, Writer
from service.api.pagination import Cursor, Limit, Page, decode_instant_cursor, kept_reports_page
from service.api.problems import Problem
from service.imports.ssd import DEFAULT_ROLE_CODES, DEFAULT_SCHEMA, DEFAULT_WORKER_KEY
from service.store.sources import (
    DEFAULT_SCHEDULE,
    SourceInvalid,
    SsdSource,
    check_source,
    delete_ssd_source,
    get_ssd_source,
    list_sync_reports,
    queue_sync,
    set_ssd_source,
    sync_status,
)

router = APIRouter(prefix="/v1/sources", tags=["sources"])
WorkerKey = Literal["staff_id", "professional_id", "registration_no"]


class SsdSourceIn(BaseModel):
    """Where and how the SSD is read: `database_url` or `path`, not both."""

    database_url: str | None = Field(
        default=None,
        max_length=2000,
        description="A read-only login to the SSD's database: postgresql://user:password@host/db "
        "or mssql+pyodbc://... The password is kept to connect with and never shown.",
    )
    schema_: str = Field(
        default=DEFAULT_SCHEMA, alias="schema", max_length=128, description="The SSD's schema."
    )
    path: str | None = Field(
        default=None,
        max_length=2000,
        description="A folder, or a .zip, on the server holding one CSV per table "
        "(ssd_cin_episodes.csv, ...), with SSD column names as headers.",
    )
    role_codes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ROLE_CODES),
        min_length=1,
        max_length=50,
        description="The ssd_involvements roles (invo_professional_role_id) that allocate a "
        "case: CW (the case worker) by default.",
    )
    worker_key: WorkerKey = Field(
        default="staff_id",
        description="Which ssd_professionals id names a worker: prof_staff_id, "
        "prof_professional_id or prof_social_worker_registration_no.",
    )
    schedule: str | None = Field(
        default=DEFAULT_SCHEDULE,
        description='The local time of day it syncs, "HH:MM" (the organisation\'s timezone); '
        "null: only when asked.",
    )


class SsdSourceOut(BaseModel):
    configured: bool = Field(description="False until an SSD source is configured.")
    database_url: str | None = Field(description="The URL, its password shown as ***.")
    schema_: str | None = Field(alias="schema")
    path: str | None
    role_codes: list[str]
    worker_key: str
    schedule: str | None


class TableOut(BaseModel):
    table: str
    rows: int
    events: int = Field(description="Events its rows evidence.")
    created: int
    replaced: int = Field(description="Events voided because their row changed, and replaced.")
    unchanged: int
    voided: int = Field(description="Events voided because their row is gone.")
    rows_rejected: int


class MissingTableOut(BaseModel):
    table: str
    reason: str


class RefusedOut(BaseModel):
    table: str
    key: str
    column: str
    value: str
    detail: str


class VoidedOut(BaseModel):
    table: str
    key: str
    event_id: str
    reason: Literal["changed", "gone"]


class NotEvaluableOut(BaseModel):
    rule_id: str
    reason: str


class SyncReportOut(BaseModel):
    id: str
    source: Literal["ssd"]
    taken_at: datetime
    tables: list[TableOut]
    missing_tables: list[MissingTableOut]
    rejected: list[RefusedOut] = Field(description="Values not believed (at most 1000 listed).")
    rejected_total: int
    voided: list[VoidedOut] = Field(description="Events voided (at most 1000 listed).")
    voided_total: int
    rules_not_evaluable: list[NotEvaluableOut]


class SyncProgressOut(BaseModel):
    rows_done: int = Field(description="Events added or voided so far.")
    rows_total: int | None = Field(description="Events to add or void; null until read.")
    cases_done: int
    cases_total: int | None


class SyncOut(BaseModel):
    id: str
    source: Literal["ssd"]
    state: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: SyncProgressOut
    report: SyncReportOut | None
    problem: dict[str, Any] | None


_NOT_CONFIGURED: dict[int | str, dict[str, Any]] = {
    409: {"description": "No SSD source is configured: PUT /v1/sources/ssd first"}
}
_NO_SOURCE = "The organisation has no SSD source: configure one with PUT /v1/sources/ssd."


def _invalid(exc: SourceInvalid) -> Problem:
    return Problem(
        422,
        str(exc),
        slug="validation",
        errors=[{"pointer": f"/{exc.field}", "detail": exc.detail}],
    )


@router.put(
    "/ssd",
    response_model=SsdSourceOut,
    responses={422: {"description": "A setting that cannot be used"}},
)
async def put_ssd(body: SsdSourceIn, principal: Admin, session: SessionDep, clock: ClockDep) -> Any:
    """Configure the organisation's Standard Safeguarding Dataset (replacing any earlier
    settings). Nothing is read until it syncs."""
    try:
        source = check_source(
            SsdSource(
                org_id=principal.org_id,
                database_url=body.database_url,
                schema=body.schema_,
                path=body.path,
                role_codes=tuple(body.role_codes),
                worker_key=body.worker_key,
                schedule=body.schedule,
            )
        )
    except SourceInvalid as exc:
        raise _invalid(exc) from exc
    await set_ssd_source(session, source, clock())
    return {"configured": True, **source.to_json()}


@router.get("/ssd", response_model=SsdSourceOut)
async def get_ssd(principal: Reader, session: SessionDep) -> Any:
    """The organisation's SSD settings, the database password hidden."""
    source = await get_ssd_source(session, principal.org_id)
    if source is None:
        return {
            "configured": False,
            "database_url": None,
            "schema": None,
            "path": None,
            "role_codes": [],
            "worker_key": DEFAULT_WORKER_KEY,
            "schedule": None,
        }
    return {"configured": True, **source.to_json()}


@router.delete("/ssd", status_code=204, responses=_NOT_CONFIGURED)
async def delete_ssd(principal: Admin, session: SessionDep) -> None:
    """Stop syncing the SSD. The events earlier syncs stored stay, as any others."""
    if not await delete_ssd_source(session, principal.org_id):
        raise Problem(409, _NO_SOURCE, slug="no-source")


@router.post(
    "/ssd/sync",
    status_code=202,
    response_model=SyncOut,
    responses={
        202: {
            "description": "Accepted: the sync runs in the background (or was already queued "
            "or running: that one); poll `Location`",
            "headers": {
                "Location": {
                    "description": "The sync to poll: /v1/sources/ssd/syncs/{id}",
                    "schema": {"type": "string"},
                }
            },
        },
        **_NOT_CONFIGURED,
    },
)
async def post_sync(principal: Writer, session: SessionDep, clock: ClockDep) -> Any:
    """Sync the SSD now: its snapshot replaces what earlier syncs stored from it."""
    if await get_ssd_source(session, principal.org_id) is None:
        raise Problem(409, _NO_SOURCE, slug="no-source")
    claim, _ = await queue_sync(session, org_id=principal.org_id, now=clock())
    found = await sync_status(session, principal.org_id, claim.id)
    return JSONResponse(
        SyncOut.model_validate(found).model_dump(mode="json", by_alias=True),
        status_code=202,
        headers={"Location": f"/v1/sources/ssd/syncs/{claim.id}"},
    )


@router.get("/ssd/syncs", response_model=Page[SyncReportOut])
async def get_syncs(
    principal: Reader, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """The kept reports of finished syncs, newest first."""
    after = decode_instant_cursor(cursor) if cursor is not None else None
    rows = await list_sync_reports(session, principal.org_id, limit=limit + 1, after=after)
    return kept_reports_page(rows, limit)


@router.get(
    "/ssd/syncs/{sync_id}",
    response_model=SyncOut,
    responses={404: {"description": "No such sync in this organisation"}},
)
async def get_sync(sync_id: str, principal: Reader, session: SessionDep) -> Any:
    """A sync: its state, how far it has got, and its report once done."""
    found = await sync_status(session, principal.org_id, sync_id)
    if found is None:
        raise Problem(404, f"No sync {sync_id!r} in this organisation.", slug="not-found")
    return found
