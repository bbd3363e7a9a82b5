"""The statutory measures as a dashboard page, with its CSV: what `GET /v1/reports/statutory`
answers, for a manager setting the authority's figures beside the Department's.

It rides on the dashboard's signed-in session (service/web/pages.py); a team token sees its
team only. The period defaults to the reporting year so far: from 1 April up to the day of
"as of", the Department's year.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.csv_export import csv_of
from service.api.deps import ClockDep
from service.api.problems import Problem
from service.api.reports import MeasureOut, measures_out, parse_day, period
from service.domain.calendar import Calendar
from service.store.dashboard_reads import Scope, team_ids
from service.store.db import SessionFactory
from service.store.statutory_reports import statutory_report
from service.web.pages import (
    BadQuery,
    Formats,
    Viewer,
    _bad_query,
    _instant,
    _see_other,
    _text,
    _viewer,
    entered_day,
    render,
)

router = APIRouter(include_in_schema=False)
PATH = "/dashboard/reports/statutory"


def year_start(day: date) -> date:
    """The first day of the reporting year (1 April to 31 March) holding `day`."""
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def _period(query: Any, calendar: Calendar, at: datetime) -> tuple[date, date]:
    """The period asked for, or the reporting year up to the day of `at`."""
    last_text, first_text = entered_day(query.get("to")), entered_day(query.get("from"))
    try:
        last = parse_day(last_text, "to") if last_text else calendar.local_date(at)
        first = parse_day(first_text, "from") if first_text else year_start(last)
        return period(first, last, calendar)
    except Problem as problem:
        raise BadQuery(problem.detail) from None


async def _read(
    request: Request, now: datetime
) -> tuple[Viewer, dict[str, Any], list[MeasureOut]] | Response:
    """The viewer, the filters in force and the measures, or the page that answers instead."""
    factory: SessionFactory = request.app.state.read_session_factory
    async with factory() as session, session.begin():
        viewer = await _viewer(request, session, now)
        if viewer is None:
            return _see_other("/dashboard/sign-in")
        query = request.query_params
        try:
            at = _instant(query.get("as_of"), viewer.calendar, now)
            first, last = _period(query, viewer.calendar, at)
        except BadQuery as exc:
            return _bad_query(exc)
        team_id = viewer.team_id or _text(query.get("team_id"))
        scope = Scope(viewer.org_id, team_id)
        found = await statutory_report(session, scope, first, last, at, viewer.calendar)
        teams = [viewer.team_id] if viewer.team_id else await team_ids(session, viewer.org_id)
    filters = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "team_id": None if viewer.team_id else team_id,
        "as_of": query.get("as_of") or None,
        "at": at,
        "team": team_id,
        "teams": teams,
    }
    return viewer, filters, measures_out(found)


@router.get(PATH)
async def statutory_page(request: Request, clock: ClockDep) -> Response:
    """The measures of the period as a table, with a link to the same as CSV."""
    read = await _read(request, clock())
    if isinstance(read, Response):
        return read
    viewer, filters, items = read
    kept = {k: filters[k] for k in ("from", "to", "team_id", "as_of") if filters[k]}
    context = {
        "viewer": viewer,
        "fmt": Formats(viewer.calendar),
        "items": items,
        "export": f"{PATH}.csv?{urlencode(kept)}",
        **filters,
    }
    return render("statutory.html", context)


@router.get(f"{PATH}.csv")
async def statutory_csv(request: Request, clock: ClockDep) -> Response:
    """The page's measures as CSV, the same file `GET /v1/reports/statutory?format=csv` gives."""
    read = await _read(request, clock())
    if isinstance(read, Response):
        return read
    _, filters, items = read
    return csv_of(f"statutory-{filters['from']}-to-{filters['to']}.csv", MeasureOut, items)
