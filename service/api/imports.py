"""Annex A imports (SPEC section 8): upload a workbook, read the kept reports."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from service.api.deps import ClockDep, Reader, SessionDep, Writer
from service.api.pagination import Cursor, Limit, Page, decode_instant_cursor, encode_cursor
from service.api.problems import Problem
from service.imports.annex_a import read_annex_a
from service.imports.mapping import EXPECTED_HEADINGS, extraction_day
from service.imports.report import ImportReport
from service.imports.workbook import WorkbookError
from service.store.imports import get_import, import_annex_a, list_imports
from service.store.orgs import ruleset_of

router = APIRouter(prefix="/v1/imports", tags=["imports"])

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RAW_TYPES = (XLSX, "application/octet-stream")
# Bodies these paths may take, above the app's 5 MiB: this upload and the dashboard's form.
LARGE_BODIES = {"/v1/imports/annex-a": MAX_UPLOAD_BYTES, "/dashboard/imports": MAX_UPLOAD_BYTES}


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
    expected = [
        {"list": number, "headings": list(headings)}
        for number, headings in EXPECTED_HEADINGS.items()
    ]
    return Problem(
        422,
        error.detail,
        slug="unreadable-workbook",
        title="The workbook cannot be imported",
        extra={"expected_headings": expected},
    )


def too_large() -> Problem:
    return Problem(
        413, f"The workbook is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB.", slug="too-large"
    )


async def run_import(
    session: AsyncSession,
    *,
    org_id: str,
    data: bytes,
    extracted_on: date,
    now: datetime,
) -> ImportReport:
    """Read the workbook (off the event loop: a large one takes a while), then import it.

    Raises the 422 problem when it cannot be read, before anything is written.
    """
    try:
        workbook = await asyncio.to_thread(read_annex_a, data, extracted_on=extracted_on)
    except WorkbookError as exc:
        raise unreadable(exc) from exc
    return await import_annex_a(
        session,
        org_id=org_id,
        workbook=workbook,
        extracted_on=extracted_on,
        now=now,
    )


async def _uploaded_file(request: Request) -> bytes:
    """The workbook: the multipart field `file`, or the raw body with a spreadsheet type."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise too_large()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (*RAW_TYPES, "multipart/form-data"):
        raise Problem(
            415,
            f"Send the workbook as multipart/form-data (field 'file') or as the raw body with "
            f"Content-Type {XLSX}.",
            slug="unsupported-media-type",
        )
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        raise too_large()
    if media != "multipart/form-data":
        return body
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(
                422,
                "The form has no file in its 'file' field.",
                slug="validation",
                errors=[{"pointer": "/file", "detail": "is required: the .xlsx workbook"}],
            )
        return await upload.read()


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/annex-a",
    response_model=ImportOut,
    responses={415: {"description": "The body is neither multipart/form-data nor a workbook"}},
    openapi_extra=_UPLOAD_BODY,
    max_body_size=MAX_UPLOAD_BYTES,
)
async def post_annex_a(
    request: Request,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    extracted_on: ExtractedOn = None,
) -> Any:
    """Import an Ofsted Annex A workbook: its dated rows become events, idempotently."""
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
    report = await run_import(
        session, org_id=principal.org_id, data=data, extracted_on=day, now=now
    )
    return report.to_json()


@router.get("", response_model=Page[ImportOut])
async def get_imports(
    principal: Reader, session: SessionDep, limit: Limit = 100, cursor: Cursor = None
) -> Any:
    """The kept import reports, newest first."""
    after = decode_instant_cursor(cursor) if cursor is not None else None
    rows = await list_imports(session, principal.org_id, limit=limit + 1, after=after)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), last["id"])
    return {"items": [_report(row) for row in rows[:limit]], "next_cursor": next_cursor}


@router.get("/{import_id}", response_model=ImportOut)
async def get_one_import(import_id: str, principal: Reader, session: SessionDep) -> Any:
    found = await get_import(session, principal.org_id, import_id)
    if found is None:
        raise Problem(404, f"No import {import_id!r} in this organisation.", slug="not-found")
    return _report(found)


def _report(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "created_at"}
