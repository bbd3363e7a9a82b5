"""A worker's and a team's page: what a team manager opens from a name on the dashboard.

A worker's page lists their caseload (the cases open at as_of allocated to them, each with
its next deadline), what is overdue and due soon, and their timeliness; a team's page the
same for the team, with its workers' load in place of a list of cases. Both are read from
the dashboard's SQL (store/dashboard_reads.py) with the scope narrowed to the worker or
team, so each read is a range of an index led by that worker or team.

A worker in two teams has one page: their whole caseload, each row naming its team (a
viewer confined to a team sees that team's part only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.csv_export import csv_response
from service.api.deps import ClockDep
from service.api.obligations import obligations_csv
from service.domain.calendar import Calendar
from service.store import dashboard_reads
from service.store.db import SessionFactory, gather_reads
from service.web import charts
from service.web.pages import (
    LOAD_BARS,
    BadQuery,
    Formats,
    Links,
    Viewer,
    _bad_query,
    _chart_context,
    _instant,
    _overdue,
    _page,
    _see_other,
    _signed_in,
    _sort,
    _text,
    _timeliness,
    _viewer_as_of,
    render,
)

router = APIRouter(include_in_schema=False)

CASELOAD_PAGE = 50
DUE_SOON_ROWS = 25
CASE_COLUMNS = tuple(field.name for field in dataclasses.fields(dashboard_reads.CaseRow))
Kind = Literal["worker", "team"]


async def _person_page(kind: Kind, name: str, request: Request, clock: ClockDep) -> Response:
    now = clock()
    viewer = await _signed_in(request, now)
    if viewer is None:
        return _see_other("/dashboard/sign-in")
    query = request.query_params
    calendar = viewer.calendar
    try:
        at = _instant(query.get("as_of"), calendar, now)
        page = _page(query.get("page"))
        listed_page = _page(query.get("list_page"), "list_page")
    except BadQuery as exc:
        return _bad_query(exc)
    sort, descending = _sort(query)
    if kind == "worker":
        scope = dashboard_reads.Scope(viewer.org_id, viewer.team_id, name)
        size = CASELOAD_PAGE
    elif viewer.team_id not in (None, name):
        # A viewer confined to a team sees that team only.
        missing = {"title": "Team not found", "message": f"There is no team {name} in view."}
        return render("error.html", missing, status=404)
    else:
        scope = dashboard_reads.Scope(viewer.org_id, name)
        size = LOAD_BARS

    async def listing(session: AsyncSession) -> Sequence[object]:
        """The caseload (a worker's) or the workers' load (a team's): one page, and one row
        more to say whether another follows."""
        if kind == "worker":
            return await dashboard_reads.caseload(
                session, scope, at, limit=size + 1, offset=(listed_page - 1) * size
            )
        return await dashboard_reads.loads(
            session,
            scope,
            at,
            calendar,
            by="worker",
            limit=size + 1,
            offset=(listed_page - 1) * size,
        )

    trend, by_rule, cases, at_risk, rows, overdue, due_soon, teams = await gather_reads(
        request.app.state.read_session_factory,
        lambda s: _timeliness(s, scope, at, viewer.ruleset),
        lambda s: dashboard_reads.rule_counts(s, scope, at, viewer.ruleset),
        lambda s: dashboard_reads.open_cases(s, scope, at),
        lambda s: dashboard_reads.at_risk_count(s, scope, at),
        listing,
        lambda s: _overdue(
            s, scope, at, viewer.ruleset, sort=sort, descending=descending, page=page
        ),
        lambda s: dashboard_reads.listed(s, scope, at, calendar, "due_soon", limit=DUE_SOON_ROWS),
        lambda s: _teams_of(s, kind, scope, at, calendar),
    )
    path = f"/dashboard/{kind}s/{quote(name, safe='')}"
    links = Links(
        {
            f"{kind}_id": name,
            "as_of": query.get("as_of"),
            "sort": None if sort == "due" else sort,
            "dir": "desc" if descending else None,
            "page": str(page) if page > 1 else None,
            "list_page": str(listed_page) if listed_page > 1 else None,
        },
        path,
    )
    summary = dashboard_reads.summarise(by_rule, cases, at_risk)
    context = {
        "viewer": viewer,
        "kind": kind,
        "name": name,
        "worker_id": name if kind == "worker" else None,
        "team_id": name if kind == "team" else viewer.team_id,
        "teams": teams,
        "at": at,
        "fmt": Formats(calendar),
        "as_of_value": Formats(calendar).entry(at),
        "path": path,
        "summary": summary,
        "empty": summary.open_cases == 0 and not by_rule,
        "cases": rows[:size] if kind == "worker" else [],
        "bars": charts.load_bars(rows[:size]) if kind == "team" else [],
        "listed_page": listed_page,
        "more_listed": len(rows) > size,
        "due_soon": due_soon[0],
        "due_soon_total": due_soon[1],
        "sort": sort,
        "descending": descending,
        "links": links,
        **overdue,
        **trend,
        **_chart_context(),
    }
    return render("person.html", context)


async def _teams_of(
    session: AsyncSession,
    kind: Kind,
    scope: dashboard_reads.Scope,
    at: datetime,
    calendar: Calendar,
) -> list[str]:
    """The teams a worker has open work or cases in (one row each in the workers' load)."""
    if kind == "team":
        return []
    loads = await dashboard_reads.loads(session, scope, at, calendar, by="worker")
    return sorted({load.team_id for load in loads if load.team_id})


@router.get("/dashboard/workers/{worker_id:path}")
async def worker_page(worker_id: str, request: Request, clock: ClockDep) -> Response:
    """A worker's caseload with each case's next deadline, overdue and due soon, timeliness."""
    return await _person_page("worker", worker_id, request, clock)


@router.get("/dashboard/teams/{team_id:path}")
async def team_page(team_id: str, request: Request, clock: ClockDep) -> Response:
    """A team's workers, overdue and due soon, timeliness."""
    return await _person_page("team", team_id, request, clock)


async def _rows(items: list[dashboard_reads.CaseRow]) -> AsyncIterator[list[object]]:
    for item in items:
        yield [getattr(item, column) for column in CASE_COLUMNS]


@router.get("/dashboard/export/caseload.csv")
async def caseload_csv(request: Request, clock: ClockDep) -> Response:
    """Every case of a worker's (or team's) caseload with its next deadline, as CSV."""
    return await _export("caseload", request, clock)


@router.get("/dashboard/export/due_soon.csv")
async def due_soon_csv(request: Request, clock: ClockDep) -> Response:
    """Every deadline due soon in the filters in force, as CSV (as the overdue export)."""
    return await _export("due_soon", request, clock)


async def _export(
    name: Literal["caseload", "due_soon"], request: Request, clock: ClockDep
) -> Response:
    factory: SessionFactory = request.app.state.read_session_factory
    async with factory() as session, session.begin():
        seen = await _viewer_as_of(request, session, clock())
        if isinstance(seen, Response):
            return seen
        viewer, at = seen
        scope = _scope(viewer, request)
        if name == "due_soon":
            filters: dict[str, Any] = {
                "statuses": ["due_soon"],
                "rule_id": None,
                "case_id": None,
                "team_id": scope.team_id,
                "worker_id": scope.worker_id,
                "due_before": None,
            }
            return await obligations_csv(
                session, factory, viewer.org_id, at, viewer.calendar, filters
            )
        # A caseload is a worker's fifty-odd cases or a team's few thousand: one read.
        every = await dashboard_reads.caseload(session, scope, at, limit=None)
    return csv_response("caseload.csv", CASE_COLUMNS, _rows(every))


def _scope(viewer: Viewer, request: Request) -> dashboard_reads.Scope:
    query = request.query_params
    team_id = viewer.team_id or _text(query.get("team_id"))
    return dashboard_reads.Scope(viewer.org_id, team_id, _text(query.get("worker_id")))
