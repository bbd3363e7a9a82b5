"""The dashboard's upload page: an admin uploads an Annex A workbook, a CIN census file or an
SSDA903 return's files, watches the import, and reads the report.

It rides on the dashboard's signed-in session (service/web/pages.py): the key is never in
a URL or kept by the browser. Uploading needs the session to have been opened with a key
holding the admin scope, checked again at every upload so a revoked or narrowed key stops
at once; anyone signed in may read the kept reports, which hold no personal data. The
upload is a plain multipart form with the session's CSRF token, and ends in a redirect to
the import's page so reloading it never imports twice. While the import runs in the
background that page shows a progress bar, kept up to date by a small script polling the
import's progress (the page itself says how far it had got when loaded, for a browser without
scripts), and then the report.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from service.api.deps import ClockDep, SessionDep
from service.api.embed import signing_secret, unsign
from service.api.imports import (
    MAX_RETURN_BYTES,
    MAX_UPLOAD_BYTES,
    start_cin_census,
    start_import,
    start_ssda903,
)
from service.api.problems import Problem
from service.imports import ssda903
from service.imports.mapping import extraction_day
from service.store.imports import import_status, list_imports
from service.store.orgs import live_key_scopes
from service.web.pages import (
    SESSION_COOKIE,
    SESSION_PREFIX,
    Formats,
    Viewer,
    _same_origin,
    _see_other,
    _viewer,
    entered_day,
    render,
)

router = APIRouter(include_in_schema=False)
RECENT = 20
NO_STORE = {"Cache-Control": "no-store"}


async def _may_upload(
    request: Request, session: AsyncSession, viewer: Viewer, now: datetime
) -> bool:
    """Whether the session was opened with a key that still holds the admin scope."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    payload = unsign(signing_secret(request.app), SESSION_PREFIX, cookie, now)
    key_id = payload.get("key") if payload else None
    if viewer.via != "key" or not isinstance(key_id, str):
        return False
    scopes = await live_key_scopes(session, viewer.org_id, key_id)
    return scopes is not None and "admin" in scopes


async def _page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    now: datetime,
    *,
    message: str | None = None,
    status: int = 200,
) -> Response:
    recent = await list_imports(session, viewer.org_id, limit=RECENT, after=None)
    context: dict[str, Any] = {
        "viewer": viewer,
        "fmt": Formats(viewer.calendar),
        "imports": recent,
        "report": None,
        "job": None,
        "may_upload": await _may_upload(request, session, viewer, now),
        "today": viewer.calendar.local_date(now).isoformat(),
        "max_mib": MAX_UPLOAD_BYTES // (1024 * 1024),
        "max_return_mib": MAX_RETURN_BYTES // (1024 * 1024),
        "max_files": ssda903.MAX_FILES,
        "message": message,
    }
    return render("imports.html", context, status=status)


@router.get("/dashboard/imports")
async def imports_page(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    now = clock()
    viewer = await _viewer(request, session, now)
    if viewer is None:
        return _see_other("/dashboard/sign-in")
    return await _page(request, session, viewer, now)


@router.get("/dashboard/imports/{import_id}")
async def import_report(
    import_id: str, request: Request, session: SessionDep, clock: ClockDep
) -> Response:
    """The import's report once done; until then how far it has got, or why it failed."""
    viewer = await _viewer(request, session, clock())
    if viewer is None:
        return _see_other("/dashboard/sign-in")
    found = await import_status(session, viewer.org_id, import_id)
    if found is None:
        missing = {"title": "Import not found", "message": f"There is no import {import_id}."}
        return render("error.html", missing, status=404)
    context = {
        "viewer": viewer,
        "fmt": Formats(viewer.calendar),
        "imports": [],
        "report": found["report"],
        "job": None if found["report"] else found,
        "may_upload": False,
        "message": None,
    }
    return render("imports.html", context)


@router.get("/dashboard/imports/{import_id}/progress")
async def import_progress(
    import_id: str, request: Request, session: SessionDep, clock: ClockDep
) -> Response:
    """The import's state and progress, for the page's script to poll."""
    viewer = await _viewer(request, session, clock())
    found = None if viewer is None else await import_status(session, viewer.org_id, import_id)
    if found is None:
        return JSONResponse({"state": "unknown"}, status_code=404, headers=NO_STORE)
    return JSONResponse({"state": found["state"], **found["progress"]}, headers=NO_STORE)


@dataclass(frozen=True, slots=True)
class _Refused:
    status: int
    message: str


Files = list[tuple[str, bytes]]
# Queues the import of the files and fields a form posted; its id. Raises a Problem, whose
# detail the page shows, when they cannot be imported.
Starter = Callable[[AsyncSession, Viewer, Files, Mapping[str, str], datetime], Awaitable[str]]


async def _upload(
    request: Request,
    session: AsyncSession,
    now: datetime,
    start: Starter,
    *,
    limit: int,
    max_files: int,
    what: str,
) -> Response:
    """Queue the import of what the form posted, then show its page; or the upload page again,
    saying why not."""
    viewer = await _viewer(request, session, now)
    if viewer is None:
        return _see_other("/dashboard/sign-in")
    if not _same_origin(request):
        refused = _Refused(403, "Upload from this page.")
    elif not await _may_upload(request, session, viewer, now):
        refused = _Refused(
            403, "Uploading needs an API key with the admin scope: sign in with one."
        )
    else:
        form = await _upload_form(request, viewer, limit=limit, max_files=max_files, what=what)
        if isinstance(form, _Refused):
            refused = form
        else:
            try:
                import_id = await start(session, viewer, *form, now)
            except Problem as problem:
                refused = _Refused(422, problem.detail)
            else:
                return _see_other(f"/dashboard/imports/{import_id}")
    return await _page(
        request, session, viewer, now, message=refused.message, status=refused.status
    )


async def _upload_form(
    request: Request, viewer: Viewer, *, limit: int, max_files: int, what: str
) -> tuple[Files, dict[str, str]] | _Refused:
    """The files (field `file`, up to `max_files`) and text fields of the form, or why they
    cannot be taken."""
    too_big = _Refused(413, f"The upload is over {limit // (1024 * 1024)} MiB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_big
    if len(await request.body()) > limit:
        return too_big
    async with request.form(max_files=max_files, max_fields=10) as form:
        token = form.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(token, viewer.csrf):
            return _Refused(403, "The form has expired: reload the page and upload again.")
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile) and u.filename]
        if not uploads:
            return _Refused(422, f"Choose {what} to upload.")
        files = [(upload.filename or "upload", await upload.read()) for upload in uploads]
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
    return files, fields


async def _start_annex_a(
    session: AsyncSession, viewer: Viewer, files: Files, fields: Mapping[str, str], now: datetime
) -> str:
    ((_, data),) = files
    try:
        day = extraction_day(entered_day(fields.get("extracted_on")), viewer.calendar, now)
    except ValueError as exc:
        raise Problem(422, f"The extraction date {exc}.") from exc
    return await start_import(session, org_id=viewer.org_id, data=data, extracted_on=day, now=now)


async def _start_cin_census(
    session: AsyncSession, viewer: Viewer, files: Files, _: Mapping[str, str], now: datetime
) -> str:
    ((_name, data),) = files
    today = viewer.calendar.local_date(now)
    return await start_cin_census(session, org_id=viewer.org_id, data=data, today=today, now=now)


async def _start_ssda903(
    session: AsyncSession, viewer: Viewer, files: Files, fields: Mapping[str, str], now: datetime
) -> str:
    text = fields.get("year", "").strip()
    if text and not (text.isascii() and text.isdigit() and 2000 <= int(text) <= 2100):
        raise Problem(422, f"The collection year must be a year such as 2024; {text!r} is not.")
    today = viewer.calendar.local_date(now)
    return await start_ssda903(
        session,
        org_id=viewer.org_id,
        files=files,
        year=int(text) if text else None,
        today=today,
        now=now,
    )


@router.post("/dashboard/imports", max_body_size=MAX_UPLOAD_BYTES)
async def upload(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    """Queue the uploaded workbook's import, then show its page."""
    return await _upload(
        request,
        session,
        clock(),
        _start_annex_a,
        limit=MAX_UPLOAD_BYTES,
        max_files=1,
        what="the Annex A workbook (.xlsx)",
    )


@router.post("/dashboard/imports/cin-census", max_body_size=MAX_RETURN_BYTES)
async def upload_cin_census(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    """Queue the uploaded census file's import, then show its page."""
    return await _upload(
        request,
        session,
        clock(),
        _start_cin_census,
        limit=MAX_RETURN_BYTES,
        max_files=1,
        what="the CIN census file (.xml)",
    )


@router.post("/dashboard/imports/ssda903", max_body_size=MAX_RETURN_BYTES)
async def upload_ssda903(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    """Queue the uploaded return files' import, then show its page."""
    return await _upload(
        request,
        session,
        clock(),
        _start_ssda903,
        limit=MAX_RETURN_BYTES,
        max_files=ssda903.MAX_FILES,
        what="the SSDA903 return's files (.csv, or a zip of them)",
    )
