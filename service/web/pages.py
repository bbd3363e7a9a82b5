"""The managers' dashboard in HTML, its case timeline, sign-in, and embeddable widgets.

Pages are rendered on the server from the same SQL as the JSON widgets, with no script (but
the one that moves an import's progress bar, web/imports_page.py), so they work with a
keyboard, a screen reader and a printer alike. A signed-in browser
holds a signed session cookie (HttpOnly, SameSite=Strict), never the API key itself: the
key is checked once at sign-in, and the session names the key so revoking it ends the
session. Widgets are opened with an embed token in the URL, as `<iframe src>` needs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.csv_export import csv_of
from service.api.dashboard import TeamOut, TimelinessOut, WorkerOut
from service.api.deps import ClockDep, SessionDep
from service.api.embed import (
    WIDGETS,
    keyed_digest,
    read_embed_token,
    sign,
    signing_secret,
    unsign,
)
from service.api.obligations import ObligationOut, obligations_csv, present
from service.api.times import EARLIEST_YEAR, LATEST_YEAR, in_range
from service.domain.calendar import Calendar
from service.domain.digests import previous_working_day
from service.domain.events import parse_day_or_instant
from service.domain.explain import explain
from service.domain.rules import Ruleset
from service.domain.status import working_days_late
from service.settings import Settings, embed_origins
from service.store import dashboard_reads
from service.store.cases import read_case
from service.store.db import SessionFactory, gather_reads
from service.store.digests import digest_content
from service.store.orgs import authenticate, live_key_scopes, org_by_id, ruleset_of
from service.web import charts, words
from service.web.throttle import FailedSignIns

router = APIRouter(include_in_schema=False)
log = logging.getLogger("caseclock.web")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "caseclock_session"
SESSION_PREFIX = "ccs1"
SESSION_LIFETIME = timedelta(hours=8)
OVERDUE_PAGE = 25
LOAD_BARS = 20
MAX_FORM_BYTES = 8192
SORTS: tuple[dashboard_reads.SortKey, ...] = ("due", "case", "rule", "worker", "team", "overdue")

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC = {path.name: path.read_bytes() for path in (HERE / "static").iterdir() if path.is_file()}
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A content hash in the stylesheet's URL lets browsers cache it for good.
ASSET_VERSION = hashlib.sha256(b"".join(STATIC[n] for n in sorted(STATIC))).hexdigest()[:12]
env.globals["asset_version"] = ASSET_VERSION
_ACRONYMS = {
    "cla": "CLA",
    "cp": "CP",
    "icpc": "ICPC",
    "s42": "section 42",
    "section47": "section 47",
}


def event_label(kind: str) -> str:
    """'cla_review_held' as 'CLA review held'."""
    text = " ".join(_ACRONYMS.get(word, word) for word in kind.split("_"))
    return text[:1].upper() + text[1:]


env.filters["event_label"] = event_label


def day_entry(value: date | str | None) -> str:
    """A day as a form's day field shows it: 20/11/2026 (an ISO text day is converted too)."""
    if isinstance(value, str):
        parsed = parse_day_or_instant(value)
        if not isinstance(parsed, date) or isinstance(parsed, datetime):
            return value
        value = parsed
    return f"{value:%d/%m/%Y}" if value is not None else ""


env.filters["day_entry"] = day_entry


# Compile every template now, so the first manager after a restart does not wait for it.
for _name in env.list_templates():
    env.get_template(_name)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: an org, and the team a token confines them to (if any)."""

    org_id: str
    team_id: str | None
    ruleset: Ruleset
    csrf: str
    via: Literal["key", "token"]

    @property
    def calendar(self) -> Calendar:
        return self.ruleset.calendar


class Formats:
    """Dates and times as a person in the org's timezone reads them."""

    def __init__(self, calendar: Calendar) -> None:
        self.zone = calendar.timezone

    def day(self, instant: datetime | None) -> str:
        if instant is None:
            return ""
        local = instant.astimezone(self.zone)
        return f"{local:%a} {local.day} {local:%b %Y}"

    def entry(self, instant: datetime) -> str:
        """A day as it is typed into a date field: day first (en-GB), whatever the browser."""
        return f"{instant.astimezone(self.zone):%d/%m/%Y}"

    def moment(self, instant: datetime | None) -> str:
        if instant is None:
            return ""
        local = instant.astimezone(self.zone)
        return f"{local.day} {local:%b %Y, %H:%M}"

    @staticmethod
    def iso(instant: datetime) -> str:
        return instant.isoformat().replace("+00:00", "Z")


def _security_headers(frame_ancestors: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; "
            f"frame-ancestors {frame_ancestors}"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def render(
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    frameable_by: str | None = None,
) -> HTMLResponse:
    """A page with its security headers; only widgets may be framed, and only by allowed sites."""
    response = HTMLResponse(env.get_template(template).render(**context), status_code=status)
    response.headers.update(_security_headers(frameable_by or "'none'"))
    if frameable_by is None:
        response.headers["X-Frame-Options"] = "DENY"
    return response


def _see_other(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    response.headers.update(_security_headers("'none'"))
    return response


# Sessions


def _same_origin(request: Request) -> bool:
    """A form post must come from our own pages (belt and braces beside SameSite=Strict).

    Browsers send `Origin: null` under `Referrer-Policy: no-referrer`, so Fetch Metadata
    decides where it is sent, and a real Origin where it is not.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


async def _signed_in(request: Request, now: datetime) -> Viewer | None:
    """The signed-in viewer of a page, read in a short transaction of its own on the read
    pool (the page's figures are then read beside each other), or None."""
    factory: SessionFactory = request.app.state.read_session_factory
    async with factory() as session:
        return await _viewer(request, session, now)


async def _viewer_as_of(
    request: Request, session: AsyncSession, now: datetime
) -> tuple[Viewer, datetime] | Response:
    """The signed-in viewer and the instant the page is as of (`as_of`), or the page that
    answers instead: sign in first, or which parameter cannot be read."""
    viewer = await _viewer(request, session, now)
    if viewer is None:
        return _see_other("/dashboard/sign-in")
    try:
        return viewer, _instant(request.query_params.get("as_of"), viewer.calendar, now)
    except BadQuery as exc:
        return _bad_query(exc)


def _sort(query: Mapping[str, str]) -> tuple[dashboard_reads.SortKey, bool]:
    """The overdue list's column and direction: due date, oldest first, unless asked."""
    sort: dashboard_reads.SortKey = next((s for s in SORTS if s == query.get("sort")), "due")
    return sort, query.get("dir") == "desc"


async def _viewer(request: Request, session: AsyncSession, now: datetime) -> Viewer | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    secret = signing_secret(request.app)
    payload = unsign(secret, SESSION_PREFIX, cookie, now)
    if payload is None or not isinstance(payload.get("org"), str):
        return None
    org = await org_by_id(session, payload["org"])
    if org is None:
        return None
    key_id = payload.get("key")
    if isinstance(key_id, str) and await live_key_scopes(session, org.id, key_id) is None:
        return None
    team = payload.get("team")
    return Viewer(
        org_id=org.id,
        team_id=team if isinstance(team, str) else None,
        ruleset=ruleset_of(org),
        csrf=keyed_digest(secret, "csrf", cookie),
        via="key" if key_id else "token",
    )


def _start_session(request: Request, payload: dict[str, Any]) -> RedirectResponse:
    response = _see_other("/dashboard")
    response.set_cookie(
        SESSION_COOKIE,
        sign(signing_secret(request.app), SESSION_PREFIX, payload),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def _sign_in_page(message: str | None = None, status: int = 200) -> HTMLResponse:
    return render("sign_in.html", {"message": message}, status=status)


def _too_many_sign_ins(wait: int) -> HTMLResponse:
    minutes = max(1, round(wait / 60))
    page = _sign_in_page(
        f"Too many failed sign-ins: try again in about {minutes} minute(s).", status=429
    )
    page.headers["Retry-After"] = str(wait)
    return page


@router.get("/dashboard/sign-in")
async def sign_in_form(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    if await _viewer(request, session, clock()) is not None:
        return _see_other("/dashboard")
    return _sign_in_page()


@router.post("/dashboard/sign-in")
async def sign_in(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    """Exchange a read key (or an embed token) for a session; the key itself is not kept."""
    if not _same_origin(request):
        return _sign_in_page("Sign in from this page.", status=403)
    now = clock()
    failures: FailedSignIns = request.app.state.failed_sign_ins
    address = f"address:{request.client.host if request.client else 'unknown'}"
    wait = failures.retry_after(address, now)
    if wait is not None:
        return _too_many_sign_ins(wait)
    credential = (await _form(request)).get("credential", "").strip()
    expires = int((now + SESSION_LIFETIME).timestamp())
    if not credential:
        return _sign_in_page("Enter an API key with the read scope.", status=401)
    grant = read_embed_token(signing_secret(request.app), credential, now)
    if grant is not None and await org_by_id(session, grant.org_id) is not None:
        until = min(expires, int(grant.expires_at.timestamp()))
        return _start_session(
            request, {"org": grant.org_id, "key": None, "team": grant.team_id, "exp": until}
        )
    principal = await authenticate(session, credential)
    if principal is None or not principal.allows("read"):
        failures.failed(address, now)
        if principal is None:
            return _sign_in_page("That key is not known, or has been revoked.", status=401)
        org = f"org:{principal.org_id}"
        wait = failures.retry_after(org, now)
        if wait is not None:
            return _too_many_sign_ins(wait)
        failures.failed(org, now)
        return _sign_in_page("That key lacks the read scope.", status=403)
    return _start_session(
        request, {"org": principal.org_id, "key": principal.key_id, "team": None, "exp": expires}
    )


@router.post("/dashboard/sign-out")
async def sign_out(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    viewer = await _viewer(request, session, clock())
    token = (await _form(request)).get("csrf", "")
    if viewer is None or not _same_origin(request) or not hmac.compare_digest(token, viewer.csrf):
        return _see_other("/dashboard/sign-in")
    response = _see_other("/dashboard/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# The dashboard


class BadQuery(ValueError):
    """A query parameter a page cannot use: answered with a 400 page that says which and why,
    never a silent fallback (a mistyped date must not quietly show today's figures)."""


MAX_PAGE = 1_000_000


def _bad_query(exc: BadQuery) -> HTMLResponse:
    return render("error.html", {"title": "Bad request", "message": str(exc)}, status=400)


_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _day_first(value: str) -> date | datetime | None:
    """20/11/2026 as typed in the form (day first, as in en-GB), else what the API takes."""
    found = _DAY_FIRST.fullmatch(value.strip())
    if found is None:
        return parse_day_or_instant(value)
    day, month, year = (int(part) for part in found.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def entered_day(value: str | None) -> str | None:
    """A day typed into a form's day field (20/11/2026) as the API writes it (2026-11-20), for
    the parsers the pages share with the API; anything else is passed on as it was typed, for
    them to refuse or take."""
    if value is None or _DAY_FIRST.fullmatch(value.strip()) is None:
        return value
    parsed = _day_first(value)
    return parsed.isoformat() if parsed is not None else value


def _instant(value: str | None, calendar: Calendar, now: datetime) -> datetime:
    """A date means the end of that day (what "as of the 20th" means), but never the future."""
    if not value:
        return now
    parsed = _day_first(value)
    if parsed is None or not in_range(parsed):
        raise BadQuery(
            f"as_of must be a date such as 20/11/2026 (or 2026-11-20, or an instant with its "
            f"offset) in the years {EARLIEST_YEAR} to {LATEST_YEAR}; {value!r} is not."
        )
    if isinstance(parsed, datetime):
        return min(parsed, now)
    return min(calendar.end_of_day(parsed), now)


def _page(value: str | None, name: str = "page") -> int:
    """A page of a list: a whole number from 1."""
    if not value:
        return 1
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise BadQuery(f"{name} must be a whole number from 1 to {MAX_PAGE:,}; {value!r} is not.")
    return int(value)


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:200] or None


class Links:
    """Links back to a page (the dashboard, or a worker's or team's page at `path`, which
    names them) that keep its filters, changing only what is asked."""

    def __init__(self, params: Mapping[str, str | None], path: str = "/dashboard") -> None:
        self.params = {k: v for k, v in params.items() if v}
        self.path = path

    def __call__(self, **changes: str | int | None) -> str:
        merged: dict[str, Any] = {**self.params, **changes}
        if self.path != "/dashboard":
            merged = {k: v for k, v in merged.items() if k not in ("team_id", "worker_id")}
        query = urlencode({k: v for k, v in merged.items() if v not in (None, "")})
        return f"{self.path}?{query}" if query else self.path

    def _as_of(self, path: str) -> str:
        suffix = f"?{urlencode({'as_of': self.params['as_of']})}" if "as_of" in self.params else ""
        return path + suffix

    def dashboard(self) -> str:
        return self._as_of("/dashboard")

    def case(self, case_id: str) -> str:
        return self._as_of(f"/dashboard/cases/{quote(case_id, safe='')}")

    def worker(self, worker_id: str) -> str:
        return self._as_of(f"/dashboard/workers/{quote(worker_id, safe='')}")

    def team(self, team_id: str) -> str:
        return self._as_of(f"/dashboard/teams/{quote(team_id, safe='')}")

    def export(self, name: str) -> str:
        """The CSV of a section, for the same instant, team and worker."""
        kept = {k: v for k, v in self.params.items() if k in ("as_of", "team_id", "worker_id")}
        query = urlencode(kept)
        return f"/dashboard/export/{name}.csv" + (f"?{query}" if query else "")


def _names(ruleset: Ruleset) -> dict[str, str]:
    return {rule.id: rule.name for rule in ruleset.rules}


async def _timeliness(
    session: AsyncSession, scope: dashboard_reads.Scope, at: datetime, ruleset: Ruleset
) -> dict[str, Any]:
    calendar = ruleset.calendar
    last = calendar.local_date(at)
    spans = dashboard_reads.periods(
        calendar, dashboard_reads.default_first_day(calendar, last, "month"), last, "month"
    )
    items = await dashboard_reads.timeliness(session, scope, at, spans, calendar)
    labels = [span.label for span in spans]
    # The month holding as_of is still running unless as_of is the end of its last day.
    so_far = labels[-1] if at < calendar.end_of_day(spans[-1].end_day - timedelta(1)) else None
    return {
        "trends": charts.trends(items, labels, _names(ruleset), so_far),
        "periods": labels,
        "so_far": so_far,
        "period_label": charts.period_label,
        "timeliness": items,
    }


async def _overdue(
    session: AsyncSession,
    scope: dashboard_reads.Scope,
    at: datetime,
    ruleset: Ruleset,
    *,
    sort: dashboard_reads.SortKey = "due",
    descending: bool = False,
    page: int = 1,
    size: int = OVERDUE_PAGE,
) -> dict[str, Any]:
    rows, total = await dashboard_reads.listed(
        session,
        scope,
        at,
        ruleset.calendar,
        "overdue",
        sort=sort,
        descending=descending,
        limit=size,
        offset=(page - 1) * size,
    )
    return {
        # The reason recorded for each, by its label in the organisation's list.
        "overdue": [
            replace(row, delay_reason=ruleset.reason_label(row.delay_reason))
            if row.delay_reason
            else row
            for row in rows
        ],
        "overdue_total": total,
        "page": page,
        "pages": max(1, -(-total // size)),
        "first_row": (page - 1) * size + 1,
    }


def _chart_context() -> dict[str, Any]:
    return {
        "bar_width": charts.BAR_WIDTH,
        "trend_width": charts.TREND_WIDTH,
        "trend_height": charts.TREND_HEIGHT,
        "grid": charts.GRID,
        "axis_x": charts.TREND_AXIS_X,
        "axis_end": charts.TREND_AXIS_END,
        "label_y": charts.TREND_LABEL_Y,
    }


@router.get("/dashboard")
async def dashboard(request: Request, clock: ClockDep) -> Response:
    now = clock()
    viewer = await _signed_in(request, now)
    if viewer is None:
        return _see_other("/dashboard/sign-in")
    query = request.query_params
    calendar = viewer.calendar
    try:
        at = _instant(query.get("as_of"), calendar, now)
        page = _page(query.get("page"))
        workers_page = _page(query.get("workers_page"), "workers_page")
    except BadQuery as exc:
        return _bad_query(exc)
    team_id = viewer.team_id or _text(query.get("team_id"))
    worker_id = _text(query.get("worker_id"))
    sort, descending = _sort(query)
    scope = dashboard_reads.Scope(viewer.org_id, team_id, worker_id)
    # Every section is an independent read: the slowest first, side by side where possible.
    trend, loads, by_rule, cases, overdue, at_risk, teams = await gather_reads(
        request.app.state.read_session_factory,
        lambda s: _timeliness(s, scope, at, viewer.ruleset),
        # A page of the workers' load at a time (one row more says whether another follows).
        lambda s: dashboard_reads.loads(
            s,
            scope,
            at,
            calendar,
            by="worker",
            limit=LOAD_BARS + 1,
            offset=(workers_page - 1) * LOAD_BARS,
        ),
        lambda s: dashboard_reads.rule_counts(s, scope, at, viewer.ruleset),
        lambda s: dashboard_reads.open_cases(s, scope, at),
        lambda s: _overdue(
            s, scope, at, viewer.ruleset, sort=sort, descending=descending, page=page
        ),
        lambda s: dashboard_reads.at_risk_count(s, scope, at),
        lambda s: _teams(s, viewer),
    )
    links = Links(
        {
            "team_id": None if viewer.team_id else team_id,
            "worker_id": worker_id,
            "as_of": query.get("as_of"),
            "sort": None if sort == "due" else sort,
            "dir": "desc" if descending else None,
            "page": str(page) if page > 1 else None,
            "workers_page": str(workers_page) if workers_page > 1 else None,
        }
    )
    workers = sorted({x.worker_id for x in loads if x.worker_id})
    notices = [
        f"No {what} {name!r} has open work in this organisation: its figures are all zero."
        for what, name, known in (("team", team_id, teams), ("worker", worker_id, workers))
        if name is not None and name not in known
    ]
    context = {
        "viewer": viewer,
        "notices": notices,
        "at": at,
        "fmt": Formats(calendar),
        "as_of_value": Formats(calendar).entry(at),
        "team_id": team_id,
        "worker_id": worker_id,
        "teams": teams,
        "workers": workers,
        "summary": dashboard_reads.summarise(by_rule, cases, at_risk),
        "bars": charts.load_bars(loads[:LOAD_BARS]),
        "workers_page": workers_page,
        "more_workers": len(loads) > LOAD_BARS,
        "sort": sort,
        "descending": descending,
        "links": links,
        **overdue,
        **trend,
        **_chart_context(),
    }
    return render("dashboard.html", context)


async def _teams(session: AsyncSession, viewer: Viewer) -> list[str]:
    if viewer.team_id:
        return [viewer.team_id]
    return await dashboard_reads.team_ids(session, viewer.org_id)


@router.get("/dashboard/cases/{case_id:path}")
async def case_timeline(
    case_id: str, request: Request, session: SessionDep, clock: ClockDep
) -> Response:
    """A case's events in order and its deadlines as they stood at as_of."""
    seen = await _viewer_as_of(request, session, clock())
    if isinstance(seen, Response):
        return seen
    viewer, at = seen
    calendar = viewer.calendar
    found = await read_case(session, viewer.org_id, case_id, at)
    if found is None or (viewer.team_id is not None and found.case.team_id != viewer.team_id):
        missing = {"title": "Case not found", "message": f"There is no case {case_id}."}
        return render("error.html", missing, status=404)
    derived: list[ObligationOut] = [present(o, at, calendar) for o in found.obligations]
    rules = viewer.ruleset
    explanations = {
        o.obligation.id: explain(o.obligation, rules.rule(o.obligation.rule_id), calendar)
        for o in found.obligations
    }
    fmt = Formats(calendar)
    names = _names(rules)
    context = {
        "viewer": viewer,
        "case": found.case,
        "events": found.events,
        "facts": [words.facts(e.data, names, fmt.moment) for e in found.events],
        "obligations": derived,
        "explanations": explanations,
        "days_late": {
            o.obligation.id: working_days_late(o.obligation, at, calendar)
            for o in found.obligations
        },
        "at": at,
        "fmt": fmt,
        "links": Links({"as_of": request.query_params.get("as_of")}),
    }
    return render("case.html", context)


@router.get("/dashboard/digest")
async def digest(request: Request, session: SessionDep, clock: ClockDep) -> Response:
    """The digest a subscription would be sent, as a page to print: as of `as_of`, new since
    the same time on the working day before."""
    seen = await _viewer_as_of(request, session, clock())
    if isinstance(seen, Response):
        return seen
    viewer, at = seen
    team_id = viewer.team_id or _text(request.query_params.get("team_id"))
    scope = dashboard_reads.Scope(viewer.org_id, team_id)
    since = previous_working_day(viewer.calendar, at)
    context = {
        "viewer": viewer,
        "team_id": team_id,
        "content": await digest_content(session, scope, at, since, viewer.ruleset),
        "fmt": Formats(viewer.calendar),
        "back": Links({"team_id": None if viewer.team_id else team_id})(),
    }
    return render("digest.html", context)


@router.get("/dashboard/static/{name}")
async def static(name: str) -> Response:
    """The vendored stylesheet and script: no CDN, nothing fetched from elsewhere."""
    content = STATIC.get(name)
    if content is None:
        return Response(status_code=404)
    return Response(
        content,
        media_type=_TYPES.get(Path(name).suffix, "application/octet-stream"),
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


# Embeddable widgets


def _frame_ancestors(settings: Settings) -> str:
    return " ".join(embed_origins(settings.embed_allowed_origins)) or "'none'"


@router.get("/widgets/{name}")
async def widget(name: str, request: Request, clock: ClockDep) -> Response:
    """One widget for an `<iframe>`, opened with an embed token; read-only by construction."""
    settings: Settings = request.app.state.settings
    frame = _frame_ancestors(settings)
    if name not in WIDGETS:
        unknown = {"title": "No such widget", "message": f"Widgets: {', '.join(WIDGETS)}."}
        return render("error.html", unknown, status=404, frameable_by=frame)
    now = clock()
    grant = read_embed_token(
        signing_secret(request.app), request.query_params.get("token", ""), now
    )
    factory: SessionFactory = request.app.state.read_session_factory
    org = None
    if grant is not None:
        async with factory() as session:
            org = await org_by_id(session, grant.org_id)
    if grant is None or org is None:
        refused = {
            "title": "This widget link does not work",
            "message": "The token is not valid or has expired. Ask for a new embed link.",
        }
        return render("error.html", refused, status=401, frameable_by=frame)
    ruleset = ruleset_of(org)
    calendar = ruleset.calendar
    team_id = grant.team_id or _text(request.query_params.get("team_id"))
    scope = dashboard_reads.Scope(org.id, team_id)
    context: dict[str, Any] = {
        "name": name,
        "team_id": team_id,
        "at": now,
        "fmt": Formats(calendar),
        **_chart_context(),
    }
    if name == "summary":
        context["summary"] = await dashboard_reads.summary(factory, scope, now, ruleset)
        return render("widget.html", context, frameable_by=frame)
    async with factory() as session:
        if name == "overdue":
            context |= await _overdue(session, scope, now, ruleset, size=15)
        elif name == "workers":
            loads = await dashboard_reads.loads(
                session, scope, now, calendar, by="worker", limit=LOAD_BARS
            )
            context["bars"] = charts.load_bars(loads)
        else:
            context |= await _timeliness(session, scope, now, ruleset)
    return render("widget.html", context, frameable_by=frame)


EXPORTS = ("overdue", "workers", "teams", "timeliness")


@router.get("/dashboard/export/{name}.csv")
async def export(name: str, request: Request, clock: ClockDep) -> Response:
    """What a dashboard section shows, every row of it, as CSV (docs/dashboard.md, CSV)."""
    if name not in EXPORTS:
        return render(
            "error.html", {"title": "Not found", "message": "No such export."}, status=404
        )
    factory: SessionFactory = request.app.state.read_session_factory
    async with factory() as session, session.begin():
        seen = await _viewer_as_of(request, session, clock())
        if isinstance(seen, Response):
            return seen
        viewer, at = seen
        calendar = viewer.calendar
        team_id = viewer.team_id or _text(request.query_params.get("team_id"))
        worker_id = _text(request.query_params.get("worker_id"))
        scope = dashboard_reads.Scope(viewer.org_id, team_id, worker_id)
        if name == "overdue":
            filters: dict[str, Any] = {
                "statuses": ["overdue"],
                "rule_id": None,
                "case_id": None,
                "team_id": team_id,
                "worker_id": worker_id,
                "due_before": None,
            }
            return await obligations_csv(session, factory, viewer.org_id, at, calendar, filters)
        if name == "timeliness":
            found = (await _timeliness(session, scope, at, viewer.ruleset))["timeliness"]
            return csv_of("timeliness.csv", TimelinessOut, found)
        by: Literal["worker", "team"] = "worker" if name == "workers" else "team"
        loads = await dashboard_reads.loads(session, scope, at, calendar, by=by)
        return csv_of(f"{name}.csv", WorkerOut if by == "worker" else TeamOut, loads)
