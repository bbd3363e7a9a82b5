"""Imports: upload an Annex A workbook (docs/imports.md), a CIN census file or SSDA903 return
files, follow the import, read the kept reports.

An upload is checked at once (a file that cannot be imported is a 422 and nothing is kept),
then imported in the background (service/jobs/background.py): the answer is 202 with the
import's id and a `Location` to poll.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service.api.deps import ClockDep, Reader, SessionDep, Writer
from service.api.pagination import (
    Cursor,
    Limit,
    Page,
    decode_instant_cursor,
    kept_reports_page,
)
from service.api.problems import Problem
from service.imports import cin_census, ssda903
from service.imports.annex_a import check_annex_a
from service.imports.mapping import expected_headings, extraction_day
from service.imports.returns import ReturnError
from service.imports.workbook import WorkbookError
from service.store.imports import import_status, list_imports, queue_import
from service.store.orgs import ruleset_of

router = APIRouter(prefix="/v1/imports", tags=["imports"])

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RAW_TYPES = (XLSX, "application/octet-stream")
# Bodies these paths may take, above the app's 5 MiB: this upload and the dashboard's form.
# A return's files: a large authority's census is a few tens of MiB.
MAX_RETURN_BYTES = cin_census.MAX_CENSUS_BYTES
XML_TYPES = ("application/xml", "text/xml", "application/octet-stream")
RETURN_TYPES = ("text/csv", "application/zip", "application/octet-stream")
# Text fields an upload form may carry beside its files: the API reads only `file`, so a form
# of more is refused (422) before its parts are buffered.
_MAX_FIELDS = 10
LARGE_BODIES = {
    "/v1/imports/annex-a": MAX_UPLOAD_BYTES,
    "/v1/imports/cin-census": MAX_RETURN_BYTES,
    "/v1/imports/ssda903": MAX_RETURN_BYTES,
    "/dashboard/imports": MAX_UPLOAD_BYTES,
    "/dashboard/imports/cin-census": MAX_RETURN_BYTES,
    "/dashboard/imports/ssda903": MAX_RETURN_BYTES,
}


class ListOut(BaseModel):
    list: int
    sheet: str
    rows: int
    events_created: int
    events_duplicate: int
    rows_rejected: int


class SkippedSheetOut(BaseModel):
    sheet: str
    reason: str


# `rules` as a tuple: `list` here is the list's number.
class MissingListOut(BaseModel):
    list: int
    title: str
    rules: tuple[str, ...]


class MissingColumnOut(BaseModel):
    list: int
    sheet: str
    column: str
    rules: tuple[str, ...]


class RejectedOut(BaseModel):
    sheet: str
    row: int
    column: str
    value: str
    detail: str
    # Reports kept before cells were judged one by one have none.
    rules: list[str] = Field(default_factory=list)


class NotEvaluableOut(BaseModel):
    rule_id: str
    reason: str


class ImportOut(BaseModel):
    id: str
    extracted_on: date
    lists: list[ListOut]
    skipped_sheets: list[SkippedSheetOut]
    # Reports kept before missing lists and columns were recorded have none.
    missing_lists: list[MissingListOut] = Field(default_factory=list)
    missing_columns: list[MissingColumnOut] = Field(default_factory=list)
    rejected: list[RejectedOut]
    rules_not_evaluable: list[NotEvaluableOut]


class PartOut(BaseModel):
    part: str = Field(description="A census block (CINdetails, Assessments, ...) or a file.")
    kind: str
    reference_date: date | None = Field(description="The end of the return's year.")
    rows: int
    events_created: int
    events_duplicate: int
    rows_rejected: int


class SkippedPartOut(BaseModel):
    part: str
    reason: str


class PlaceOut(BaseModel):
    part: str
    row: int = Field(description="The line of the file.")
    column: str = Field(description="The element or column.")
    value: str
    detail: str


class ReturnImportOut(BaseModel):
    """The report of a CIN census or SSDA903 import (docs/sources.md)."""

    id: str
    source: Literal["cin-census", "ssda903"]
    reference_date: date
    parts: list[PartOut]
    skipped: list[SkippedPartOut]
    rejected: list[PlaceOut] = Field(description="Values refused: not believed, not fatal.")
    revised: list[PlaceOut] = Field(description="Rows a later return replaced.")
    rules_not_evaluable: list[NotEvaluableOut]


class ProgressOut(BaseModel):
    rows_done: int = Field(description="Rows of the workbook whose cases are written.")
    rows_total: int | None = Field(description="The workbook's rows; null until it is read.")
    cases_done: int
    cases_total: int | None = Field(description="Cases the workbook names; null until read.")


_ONCE_DONE = "As in `report`: an Annex A import's, once it is done."
_ANNEX_A_REPORT = (
    "lists",
    "skipped_sheets",
    "missing_lists",
    "missing_columns",
    "rejected",
    "rules_not_evaluable",
)


class ImportStatusOut(BaseModel):
    id: str
    source: Literal["annex-a", "cin-census", "ssda903"]
    state: Literal["queued", "running", "done", "failed"]
    extracted_on: date
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: ProgressOut
    report: ImportOut | ReturnImportOut | None = Field(
        description="The import's report, once it is done."
    )
    problem: dict[str, Any] | None = Field(
        description="Why it failed (RFC 9457), and that what its finished steps wrote stays."
    )
    # An Annex A import's report fields at the top level too, once done: the response keeps
    # the report's shape for clients that read it there, beside the job's state.
    lists: list[ListOut] | None = Field(default=None, description=_ONCE_DONE)
    skipped_sheets: list[SkippedSheetOut] | None = Field(default=None, description=_ONCE_DONE)
    missing_lists: list[MissingListOut] | None = Field(default=None, description=_ONCE_DONE)
    missing_columns: list[MissingColumnOut] | None = Field(default=None, description=_ONCE_DONE)
    rejected: list[RejectedOut] | None = Field(default=None, description=_ONCE_DONE)
    rules_not_evaluable: list[NotEvaluableOut] | None = Field(default=None, description=_ONCE_DONE)

    @model_validator(mode="before")
    @classmethod
    def _report_at_top_level(cls, data: Any) -> Any:
        report = data.get("report") if isinstance(data, dict) else None
        if not isinstance(report, dict) or report.get("source", "annex-a") != "annex-a":
            return data
        return {**{key: report.get(key) for key in _ANNEX_A_REPORT}, **data}


ExtractedOn = Annotated[
    str | None,
    Query(
        description="The day the workbook was produced (YYYY-MM-DD), not after today; "
        "empty or left out: today.",
        # What extraction_day takes; the years past today's it refuses too.
        json_schema_extra={
            "type": "string",
            "anyOf": [{"format": "date", "pattern": "^(19|20)[0-9]{2}-"}, {"maxLength": 0}],
        },
    ),
]


def unreadable(error: WorkbookError) -> Problem:
    """A 422 that says why, and which headings caseclock looks for."""
    return Problem(
        422,
        error.detail,
        slug="unreadable-workbook",
        title="The workbook cannot be imported",
        extra={"expected_headings": expected_headings()},
    )


def too_large(limit: int = MAX_UPLOAD_BYTES) -> Problem:
    return Problem(413, f"The upload is over {limit // (1024 * 1024)} MiB.", slug="too-large")


async def start_import(
    session: AsyncSession, *, org_id: str, data: bytes, extracted_on: date, now: datetime
) -> str:
    """Check the workbook can be imported (off the event loop), then queue its import; the
    import's id. Raises the 422 problem when it cannot be, before anything is kept."""
    try:
        await asyncio.to_thread(check_annex_a, data, extracted_on=extracted_on)
    except WorkbookError as exc:
        raise unreadable(exc) from exc
    queued = await queue_import(
        session, org_id=org_id, data=data, extracted_on=extracted_on, now=now
    )
    return queued.id


async def _uploaded_file(request: Request) -> bytes:
    """The workbook: the multipart field `file`, or the raw body with a spreadsheet type."""
    ((_, data),) = await _uploaded_files(
        request, limit=MAX_UPLOAD_BYTES, raw_types=RAW_TYPES, what="the .xlsx workbook"
    )
    return data


async def _uploaded_files(
    request: Request,
    *,
    limit: int,
    raw_types: tuple[str, ...],
    what: str,
    max_files: int = 1,
) -> list[tuple[str, bytes]]:
    """The uploaded files with their names: the multipart field `file` (repeated, up to
    `max_files`), or the raw body with one of `raw_types` (named "upload")."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (*raw_types, "multipart/form-data"):
        raise Problem(
            415,
            f"Send {what} as multipart/form-data (field 'file') or as the raw body with "
            f"Content-Type {raw_types[0]}.",
            slug="unsupported-media-type",
        )
    body = await request.body()
    if len(body) > limit:
        raise too_large(limit)
    if media != "multipart/form-data":
        return [("upload", body)]
    try:
        form = await request.form(max_files=max_files, max_fields=_MAX_FIELDS)
    except HTTPException as exc:  # the multipart parser's refusal: too many fields or files
        raise Problem(
            422,
            f"The form cannot be read: {exc.detail}",
            slug="validation",
            errors=[{"pointer": "/", "detail": f"{exc.detail} (the form takes 'file' only)"}],
        ) from exc
    try:
        uploads = [item for item in form.getlist("file") if isinstance(item, UploadFile)]
        if not uploads:
            raise Problem(
                422,
                "The form has no file in its 'file' field.",
                slug="validation",
                errors=[{"pointer": "/file", "detail": f"is required: {what}"}],
            )
        return [(upload.filename or "upload", await upload.read()) for upload in uploads]
    finally:
        await form.close()


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: the import runs in the background; poll `Location`",
        "headers": {
            "Location": {
                "description": "The import to poll: /v1/imports/{id}",
                "schema": {"type": "string"},
            }
        },
    },
    415: {"description": "The body is neither multipart/form-data nor a file of this kind"},
    422: {"description": "The file cannot be imported (unsafe, unreadable, not of this kind)"},
}


def _files_body(media: str, many: bool) -> dict[str, Any]:
    field: dict[str, Any] = {"type": "string", "format": "binary"}
    files = {"type": "array", "items": field} if many else field
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": files},
                        "required": ["file"],
                    }
                },
                media: {"schema": field},
            },
        }
    }


@router.post(
    "/annex-a",
    status_code=202,
    response_model=ImportStatusOut,
    responses=_ACCEPTED,
    openapi_extra=_files_body(XLSX, many=False),
    max_body_size=MAX_UPLOAD_BYTES,
)
async def post_annex_a(
    request: Request,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    extracted_on: ExtractedOn = None,
) -> Any:
    """Import an Ofsted Annex A workbook: its dated rows become events, idempotently.

    The file is checked at once; the import runs in the background and is followed at
    `GET /v1/imports/{id}` until its state is `done` (with the report) or `failed`.
    """
    ruleset = ruleset_of(principal)
    now = clock()
    try:
        day = extraction_day(extracted_on, ruleset.calendar, now)
    except ValueError as exc:
        raise Problem(
            422,
            f"'extracted_on' {exc}.",
            slug="validation",
            errors=[{"parameter": "extracted_on", "detail": str(exc)}],
        ) from exc
    data = await _uploaded_file(request)
    import_id = await start_import(
        session, org_id=principal.org_id, data=data, extracted_on=day, now=now
    )
    queued = await get_one_import(import_id, principal, session)
    return JSONResponse(
        ImportStatusOut.model_validate(queued).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/imports/{import_id}"},
    )


def unreadable_return(error: ReturnError) -> Problem:
    return Problem(422, error.detail, slug="unreadable-return", title="The file cannot be imported")


async def start_cin_census(
    session: AsyncSession, *, org_id: str, data: bytes, today: date, now: datetime
) -> str:
    """Check the census can be imported (off the event loop), then queue its import; the
    import's id. Raises the 422 problem when it cannot be, before anything is kept."""
    try:
        census = await asyncio.to_thread(cin_census.read_cin_census, data, today=today)
    except ReturnError as exc:
        raise unreadable_return(exc) from exc
    queued = await queue_import(
        session,
        org_id=org_id,
        data=data,
        extracted_on=census.reference_date,
        now=now,
        source=cin_census.SOURCE,
    )
    return queued.id


async def start_ssda903(
    session: AsyncSession,
    *,
    org_id: str,
    files: list[tuple[str, bytes]],
    year: int | None,
    today: date,
    now: datetime,
) -> str:
    """Check the return's files (named, as their names may give the year) can be imported,
    then queue their import; the import's id. Raises the 422 problem when they cannot be."""
    uploads = [ssda903.Upload(name, data) for name, data in files]
    try:
        returns = await asyncio.to_thread(ssda903.read_ssda903, uploads, year=year, today=today)
    except ReturnError as exc:
        raise unreadable_return(exc) from exc
    queued = await queue_import(
        session,
        org_id=org_id,
        data=ssda903.pack(uploads),
        extracted_on=returns.reference_date,
        now=now,
        source=ssda903.SOURCE,
        year=year,
    )
    return queued.id


async def _queued(session: AsyncSession, principal: Writer, import_id: str) -> JSONResponse:
    """The 202 answer to an upload: the import as it stands, and where to poll it."""
    queued = await get_one_import(import_id, principal, session)
    return JSONResponse(
        ImportStatusOut.model_validate(queued).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/imports/{import_id}"},
    )


@router.post(
    "/cin-census",
    status_code=202,
    response_model=ImportStatusOut,
    responses=_ACCEPTED,
    openapi_extra=_files_body("application/xml", many=False),
    max_body_size=MAX_RETURN_BYTES,
)
async def post_cin_census(
    request: Request, principal: Writer, session: SessionDep, clock: ClockDep
) -> Any:
    """Import a Children in Need census XML file (any schema year from 2017): its episodes'
    dates become events, idempotently, so several years build one history.

    The file is checked at once; the import runs in the background, followed at
    `GET /v1/imports/{id}`.
    """
    now = clock()
    today = ruleset_of(principal).calendar.local_date(now)
    ((_, data),) = await _uploaded_files(
        request, limit=MAX_RETURN_BYTES, raw_types=XML_TYPES, what="the census .xml file"
    )
    import_id = await start_cin_census(
        session, org_id=principal.org_id, data=data, today=today, now=now
    )
    return await _queued(session, principal, import_id)


Year = Annotated[
    int | None,
    Query(
        ge=2000,
        le=2100,
        description="The collection year (2024: the year to 31 March 2024) of files whose "
        "names give none.",
    ),
]


@router.post(
    "/ssda903",
    status_code=202,
    response_model=ImportStatusOut,
    responses=_ACCEPTED,
    openapi_extra=_files_body("text/csv", many=True),
    max_body_size=MAX_RETURN_BYTES,
)
async def post_ssda903(
    request: Request, principal: Writer, session: SessionDep, clock: ClockDep, year: Year = None
) -> Any:
    """Import SSDA903 return CSVs (several files in one request, field `file` repeated, or a
    zip): periods of care, placements, reviews and social workers become events; a later
    return replaces what it revises.

    The files are checked at once; the import runs in the background, followed at
    `GET /v1/imports/{id}`.
    """
    now = clock()
    today = ruleset_of(principal).calendar.local_date(now)
    files = await _uploaded_files(
        request,
        limit=MAX_RETURN_BYTES,
        raw_types=RETURN_TYPES,
        what="the return's .csv files (or a zip of them)",
        max_files=ssda903.MAX_FILES,
    )
    import_id = await start_ssda903(
        session, org_id=principal.org_id, files=files, year=year, today=today, now=now
    )
    return await _queued(session, principal, import_id)


@router.get("", response_model=Page[ImportOut | ReturnImportOut])
async def get_imports(
    principal: Reader, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """The kept import reports, newest first."""
    after = decode_instant_cursor(cursor) if cursor is not None else None
    rows = await list_imports(session, principal.org_id, limit=limit + 1, after=after)
    return kept_reports_page(rows, limit)


@router.get(
    "/{import_id}",
    response_model=ImportStatusOut,
    responses={404: {"description": "No such import in this organisation"}},
)
async def get_one_import(import_id: str, principal: Reader, session: SessionDep) -> Any:
    """An import: its state (queued, running, done, failed), how far it has got, and its
    report once done."""
    found = await import_status(session, principal.org_id, import_id)
    if found is None:
        raise Problem(404, f"No import {import_id!r} in this organisation.", slug="not-found")
    return found
