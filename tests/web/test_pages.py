"""The HTML dashboard, its sign-in and the embeddable widgets, over the real app (no browser)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from conftest import FixedClock, Tenant
from fastapi import FastAPI
from sqlalchemy import update

from service.main import create_app
from service.settings import Settings
from service.store.db import transaction
from service.store.orgs import create_api_key
from service.store.tables import ApiKey

FORM = {"content-type": "application/x-www-form-urlencoded"}
TILE = re.compile(
    r'data-tile="(\w+)">\s*<span class="tile__label">[^<]*</span>\s*'
    r'<span class="tile__value">(\d+)</span>'
)


def event(event_id: str, kind: str, case_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "case_id": case_id, "occurred_at": at, **fields}


async def caseload(tenant: Tenant) -> None:
    """Two teams: T-1 has an overdue referral decision on C-1, T-2 a fresh referral on C-2."""
    events = [
        event(
            "C-1-ref",
            "referral_received",
            "C-1",
            "2026-11-02T10:00:00Z",
            worker_id="W-1",
            team_id="T-1",
        ),
        event(
            "C-2-ref",
            "referral_received",
            "C-2",
            "2026-11-19T10:00:00Z",
            worker_id="W-2",
            team_id="T-2",
        ),
        event(
            "C-3-ref",
            "referral_received",
            "C-3",
            "2026-10-01T10:00:00Z",
            worker_id="W-3",
            team_id="T-1",
        ),
    ]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text


_ADDRESSES = itertools.count(1)


def browser(app: FastAPI) -> httpx.AsyncClient:
    """A browser of its own, from an address of its own: failed sign-ins count per address."""
    address = next(_ADDRESSES)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(
            app=app, client=(f"198.51.{address // 250}.{address % 250 + 1}", 50000)
        ),
        base_url="http://caseclock.test",
    )


@pytest.fixture
async def visitor(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as client:
        yield client


async def read_key(app: FastAPI, tenant: Tenant, scope: str = "read") -> str:
    async with transaction(app.state.session_factory) as session:
        _, key = await create_api_key(
            session,
            org_id=tenant.org_id,
            scopes=frozenset({scope}),
            name="dashboard",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
    return key


async def sign_in(client: httpx.AsyncClient, credential: str) -> httpx.Response:
    return await client.post("/dashboard/sign-in", content=f"credential={credential}", headers=FORM)


@pytest.fixture
async def signed_in(app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient) -> httpx.AsyncClient:
    await caseload(tenant)
    response = await sign_in(visitor, await read_key(app, tenant))
    assert response.status_code == 303, response.text
    return visitor


def tiles(html: str) -> dict[str, int]:
    return {name: int(value) for name, value in TILE.findall(html)}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match[1]


async def embed_token(tenant: Tenant, **body: Any) -> str:
    response = await tenant.admin.post("/v1/embed-tokens", json={"ttl_seconds": 3600, **body})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


# Signing in


async def test_the_dashboard_sends_a_visitor_without_a_session_to_sign_in(
    visitor: httpx.AsyncClient,
) -> None:
    response = await visitor.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in"


async def test_the_sign_in_form_posts_the_key_in_the_body_not_the_url(
    visitor: httpx.AsyncClient,
) -> None:
    html = (await visitor.get("/dashboard/sign-in")).text
    assert '<form method="post" action="/dashboard/sign-in"' in html
    assert 'type="password" id="credential" name="credential"' in html
    assert '<label for="credential">' in html


async def test_signing_in_sets_an_http_only_strict_session_cookie(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    response = await sign_in(visitor, await read_key(app, tenant))
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age" not in cookie


async def test_the_session_cookie_does_not_hold_the_key(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    key = await read_key(app, tenant)
    response = await sign_in(visitor, key)
    assert key not in response.headers["set-cookie"]
    assert key[3:] not in response.headers["set-cookie"]


async def test_an_unknown_key_cannot_sign_in(visitor: httpx.AsyncClient) -> None:
    response = await sign_in(visitor, "cc_not_a_key")
    assert response.status_code == 401
    assert "not known" in response.text
    assert "cc_not_a_key" not in response.text
    assert "set-cookie" not in response.headers


async def test_a_key_without_the_read_scope_cannot_sign_in(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    response = await sign_in(visitor, await read_key(app, tenant, scope="events:write"))
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_a_sign_in_posted_from_another_site_is_refused(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    key = await read_key(app, tenant)
    response = await visitor.post(
        "/dashboard/sign-in",
        content=f"credential={key}",
        headers={**FORM, "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_a_tampered_session_cookie_is_not_accepted(signed_in: httpx.AsyncClient) -> None:
    cookie = signed_in.cookies["caseclock_session"]
    signed_in.cookies.set(
        "caseclock_session", cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB")
    )
    response = await signed_in.get("/dashboard")
    assert response.status_code == 303


async def test_a_session_ends_after_eight_hours(
    signed_in: httpx.AsyncClient, clock: FixedClock
) -> None:
    clock.now += timedelta(hours=8, seconds=1)
    response = await signed_in.get("/dashboard")
    assert response.status_code == 303


async def test_revoking_the_key_ends_its_sessions(
    app: FastAPI, signed_in: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with transaction(app.state.session_factory) as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.org_id == tenant.org_id)  # type: ignore[arg-type]
            .values(revoked_at=datetime(2026, 11, 20, tzinfo=UTC))
        )
    response = await signed_in.get("/dashboard")
    assert response.status_code == 303


async def test_signing_out_ends_the_session(signed_in: httpx.AsyncClient) -> None:
    token = csrf((await signed_in.get("/dashboard")).text)
    response = await signed_in.post("/dashboard/sign-out", content=f"csrf={token}", headers=FORM)
    assert response.status_code == 303
    assert 'caseclock_session=""' in response.headers["set-cookie"]
    assert (await signed_in.get("/dashboard")).status_code == 303


async def test_signing_out_without_the_form_token_leaves_the_session(
    signed_in: httpx.AsyncClient,
) -> None:
    response = await signed_in.post("/dashboard/sign-out", content="csrf=forged", headers=FORM)
    assert "set-cookie" not in response.headers
    assert (await signed_in.get("/dashboard")).status_code == 200


# The dashboard


async def test_the_tiles_show_the_summary_widget_figures(
    signed_in: httpx.AsyncClient, tenant: Tenant
) -> None:
    html = (await signed_in.get("/dashboard")).text
    summary = (await tenant.reader.get("/v1/dashboard/summary")).json()
    assert tiles(html) == {
        "open_cases": summary["open_cases"],
        "due_soon": summary["obligations"]["due_soon"],
        "overdue": summary["obligations"]["overdue"],
        "escalated": summary["obligations"]["escalated"],
        "at_risk": summary["obligations"]["at_risk"],
    }
    assert tiles(html)["overdue"] > 0


async def test_the_dashboard_states_the_instant_it_shows(signed_in: httpx.AsyncClient) -> None:
    html = (await signed_in.get("/dashboard")).text
    assert '<time id="as-of" datetime="2026-11-20T12:00:00Z">20 Nov 2026, 12:00</time>' in html


async def test_a_past_date_shows_the_dashboard_at_the_end_of_that_day(
    signed_in: httpx.AsyncClient, tenant: Tenant
) -> None:
    html = (await signed_in.get("/dashboard", params={"as_of": "2026-11-03"})).text
    assert 'datetime="2026-11-03T23:59:59.999999Z"' in html
    summary = await tenant.reader.get(
        "/v1/dashboard/summary", params={"as_of": "2026-11-03T23:59:59.999999Z"}
    )
    assert tiles(html)["overdue"] == summary.json()["obligations"]["overdue"]


async def test_filtering_by_team_shows_only_that_teams_cases(
    signed_in: httpx.AsyncClient,
) -> None:
    html = (await signed_in.get("/dashboard", params={"team_id": "T-2"})).text
    assert "C-1" not in html
    assert "C-3" not in html
    assert '<option value="T-2" selected>' in html


async def test_filtering_by_worker_shows_only_that_workers_cases(
    signed_in: httpx.AsyncClient,
) -> None:
    html = (await signed_in.get("/dashboard", params={"worker_id": "W-3"})).text
    assert ">C-3</a>" in html
    assert ">C-1</a>" not in html


async def test_the_overdue_list_starts_with_the_longest_overdue(
    signed_in: httpx.AsyncClient,
) -> None:
    html = (await signed_in.get("/dashboard")).text
    assert html.index(">C-3</a>") < html.index(">C-1</a>")


async def test_the_overdue_list_sorts_by_a_column_either_way(
    signed_in: httpx.AsyncClient,
) -> None:
    ascending = (await signed_in.get("/dashboard", params={"sort": "case"})).text
    descending = (await signed_in.get("/dashboard", params={"sort": "case", "dir": "desc"})).text
    assert ascending.index(">C-1</a>") < ascending.index(">C-3</a>")
    assert descending.index(">C-3</a>") < descending.index(">C-1</a>")
    assert 'aria-sort="descending"' in descending


def working_days_column(html: str) -> list[int]:
    table = html[html.index('class="data overdue-table"') : html.index("</table>")]
    return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>\s*</tr>', table)]


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_the_overdue_list_sorts_by_working_days_overdue(
    signed_in: httpx.AsyncClient, direction: str
) -> None:
    html = (await signed_in.get("/dashboard", params={"sort": "overdue", "dir": direction})).text
    days = working_days_column(html)
    assert len(set(days)) > 1
    assert days == sorted(days, reverse=direction == "desc")
    assert f'class="num" aria-sort="{direction}ending"' in html


async def test_sort_links_keep_the_filters(signed_in: httpx.AsyncClient) -> None:
    html = (await signed_in.get("/dashboard", params={"team_id": "T-1"})).text
    assert 'href="/dashboard?team_id=T-1&amp;sort=case"' in html


async def test_each_overdue_case_links_to_its_timeline(signed_in: httpx.AsyncClient) -> None:
    html = (await signed_in.get("/dashboard")).text
    assert '<a href="/dashboard/cases/C-1">C-1</a>' in html


async def test_the_workers_load_ranks_the_most_overdue_worker_first(
    signed_in: httpx.AsyncClient,
) -> None:
    html = (await signed_in.get("/dashboard")).text
    section = html[html.index('id="workers"') :]
    assert section.index(">W-3</a></th>") < section.index(">W-2</a></th>")


async def test_the_timeliness_chart_is_drawn_in_svg_with_a_text_alternative(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    decision = event(
        "C-1-dec",
        "referral_decision_made",
        "C-1",
        "2026-11-03T10:00:00Z",
        data={"outcome": "assessment"},
    )
    await caseload(tenant)
    await tenant.writer.post("/v1/events", json=decision)
    await sign_in(visitor, await read_key(app, tenant))
    html = (await visitor.get("/dashboard")).text
    assert '<svg class="trend__chart"' in html
    assert '<title id="trend-referral-decision-title">On-time rate per month' in html
    assert "<caption>On-time rate per month" in html


async def test_the_case_timeline_shows_its_events_and_deadlines(
    signed_in: httpx.AsyncClient,
) -> None:
    response = await signed_in.get("/dashboard/cases/C-1")
    assert response.status_code == 200
    assert "<h1>Case C-1</h1>" in response.text
    assert "Referral received" in response.text
    assert "Referral decision within 1 working day" in response.text
    assert 'status--overdue">Overdue' in response.text


async def test_the_case_timeline_says_why_each_deadline_falls_when_it_does(
    signed_in: httpx.AsyncClient,
) -> None:
    # C-1's referral on Mon 2 Nov 2026: a decision 1 working day later, and an assessment 45
    # working days later, past Christmas Day (Fri 25 Dec), the Boxing Day substitute (Mon 28
    # Dec), New Year's Day (Fri 1 Jan 2027) and 9 weekends.
    text = unescape((await signed_in.get("/dashboard/cases/C-1")).text)
    assert "Due by the end of Tue 3 Nov 2026: 1 working day after Mon 2 Nov 2026." in text
    assert (
        "Due by the end of Thu 7 Jan 2027: 45 working days after Mon 2 Nov 2026, skipping "
        "Fri 25 Dec (Christmas Day), Mon 28 Dec (Boxing Day, substitute day), "
        "Fri 1 Jan (New Year's Day). Weekend days not counted: 18."
    ) in text


async def test_the_case_timeline_says_a_deadline_was_missed_then_cancelled(
    tenant: Tenant, signed_in: httpx.AsyncClient
) -> None:
    # A referral on Mon 2 Nov 2026 is due a decision by the end of Tue 3 Nov; the case closes
    # unanswered on Tue 10 Nov.
    await tenant.writer.post(
        "/v1/events/batch",
        json={
            "events": [
                event("C-9-ref", "referral_received", "C-9", "2026-11-02T10:00:00Z"),
                event("C-9-end", "case_closed", "C-9", "2026-11-10T10:00:00Z"),
            ]
        },
    )
    html = (await signed_in.get("/dashboard/cases/C-9")).text
    assert "Missed, then cancelled on Tue 10 Nov 2026" in unescape(re.sub("<[^>]+>", "", html))


async def test_a_case_of_another_organisation_is_not_found(
    signed_in: httpx.AsyncClient,
) -> None:
    response = await signed_in.get("/dashboard/cases/C-404")
    assert response.status_code == 404


# Failed sign-ins are throttled


async def fail_to_sign_in(visitor: httpx.AsyncClient, times: int) -> httpx.Response:
    response = None
    for _ in range(times):
        response = await sign_in(visitor, "cc_not-a-key")
    assert response is not None
    return response


async def test_sign_in_is_refused_with_retry_after_past_ten_failures_from_one_address(
    visitor: httpx.AsyncClient,
) -> None:
    assert (await fail_to_sign_in(visitor, 10)).status_code == 401
    refused = await sign_in(visitor, "cc_not-a-key")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 300


async def test_a_throttled_address_is_refused_even_with_a_good_key(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await fail_to_sign_in(visitor, 10)
    assert (await sign_in(visitor, await read_key(app, tenant))).status_code == 429


async def test_failures_from_one_address_do_not_throttle_another(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await fail_to_sign_in(visitor, 11)
    async with browser(app) as elsewhere:
        assert (await sign_in(elsewhere, await read_key(app, tenant))).status_code == 303


async def test_an_address_may_sign_in_again_once_its_failures_are_five_minutes_old(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient, clock: FixedClock
) -> None:
    await fail_to_sign_in(visitor, 10)
    clock.now += timedelta(minutes=5, seconds=1)
    assert (await sign_in(visitor, await read_key(app, tenant))).status_code == 303


# Bad parameters are a 400 page that says what was wrong, never a 500 or a quiet fallback


@pytest.mark.parametrize(
    "query",
    [
        "page=99999999999999999999",
        "page=\u00b2",
        "page=0",
        "as_of=9999-12-31",
        "as_of=0001-01-01",
        "as_of=20th",
    ],
)
async def test_a_bad_dashboard_parameter_is_a_400_page_naming_it(
    signed_in: httpx.AsyncClient, query: str
) -> None:
    response = await signed_in.get(f"/dashboard?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.text


async def test_a_bad_as_of_on_a_case_page_is_a_400_page(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/dashboard/cases/C-1?as_of=9999-12-31")
    assert response.status_code == 400
    assert "as_of" in response.text


@pytest.mark.parametrize("filter_by", ["team_id", "worker_id"])
async def test_a_team_or_worker_with_no_open_work_is_said_so_not_shown_as_zeros(
    signed_in: httpx.AsyncClient, filter_by: str
) -> None:
    response = await signed_in.get("/dashboard", params={filter_by: "NOBODY-9"})
    assert response.status_code == 200
    assert "No team" in response.text or "No worker" in response.text
    assert "&#39;NOBODY-9&#39; has open work" in response.text


async def test_the_workers_load_is_paged_twenty_workers_at_a_time(
    tenant: Tenant, signed_in: httpx.AsyncClient
) -> None:
    events = [
        event(
            f"P-{n}", "referral_received", f"P-{n}", "2026-11-02T10:00:00Z", worker_id=f"WP-{n:02}"
        )
        for n in range(25)
    ]
    assert (
        await tenant.writer.post("/v1/events/batch", json={"events": events})
    ).status_code == 200
    first = (await signed_in.get("/dashboard")).text
    rest = (await signed_in.get("/dashboard", params={"workers_page": "2"})).text
    shown = [set(re.findall(r"WP-\d\d", html)) for html in (first, rest)]
    assert 'aria-label="Workers&#39; load pages"' in first  # the apostrophe escaped
    assert "workers_page=2" in first
    assert len(shown[0] | shown[1]) == 25


# Pages are safe to serve


async def test_pages_forbid_framing_inline_script_and_referrers(
    signed_in: httpx.AsyncClient,
) -> None:
    for path in ("/dashboard", "/dashboard/cases/C-1", "/dashboard/sign-in"):
        headers = (await signed_in.get(path, follow_redirects=True)).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


async def test_pages_carry_no_inline_script_or_style_and_nothing_from_elsewhere(
    signed_in: httpx.AsyncClient,
) -> None:
    for path in ("/dashboard", "/dashboard/cases/C-1"):
        html = (await signed_in.get(path)).text
        assert "<script" not in html
        assert " style=" not in html
        assert not re.search(r"\son[a-z]+=", html)
        assert not re.search(r'(src|href)="(https?:)?//', html)


async def test_the_stylesheet_is_served_from_the_app(visitor: httpx.AsyncClient) -> None:
    response = await visitor.get("/dashboard/static/dashboard.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_only_vendored_files_are_served_as_static(visitor: httpx.AsyncClient) -> None:
    assert (await visitor.get("/dashboard/static/..%2Fpages.py")).status_code == 404
    assert (await visitor.get("/dashboard/static/missing.js")).status_code == 404


# Embeddable widgets


async def test_each_widget_opens_with_an_embed_token(
    tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await caseload(tenant)
    token = await embed_token(tenant)
    for name in ("summary", "overdue", "workers", "timeliness"):
        response = await visitor.get(f"/widgets/{name}", params={"token": token})
        assert response.status_code == 200, name
        assert '<h1 class="widget__title">' in response.text


@pytest.mark.parametrize("name", ["overdue", "workers"])
async def test_a_widget_links_nowhere_not_even_to_worker_and_team_pages(
    tenant: Tenant, visitor: httpx.AsyncClient, name: str
) -> None:
    await caseload(tenant)
    token = await embed_token(tenant)
    html = (await visitor.get(f"/widgets/{name}", params={"token": token})).text
    assert "W-1" in html
    assert re.findall(r'<a [^>]*href="([^"]*)"', html) == ["#main"]  # the skip link only


async def test_the_summary_widget_shows_the_summary_figures(
    tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await caseload(tenant)
    html = (await visitor.get("/widgets/summary", params={"token": await embed_token(tenant)})).text
    summary = (await tenant.reader.get("/v1/dashboard/summary")).json()
    assert tiles(html)["overdue"] == summary["obligations"]["overdue"]


async def test_a_team_token_shows_only_that_teams_work(
    tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await caseload(tenant)
    token = await embed_token(tenant, team_id="T-2")
    html = (await visitor.get("/widgets/overdue", params={"token": token, "team_id": "T-1"})).text
    assert "C-1" not in html
    assert "Team T-2" in html


async def test_a_tampered_token_gets_401(tenant: Tenant, visitor: httpx.AsyncClient) -> None:
    token = await embed_token(tenant, team_id="T-2")
    prefix, payload, signature = token.split(".")
    forged = f"{prefix}.{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{signature}"
    for bad in (forged, token[:-1], "nonsense", ""):
        response = await visitor.get("/widgets/summary", params={"token": bad})
        assert response.status_code == 401


async def test_an_expired_token_gets_401(
    tenant: Tenant, visitor: httpx.AsyncClient, clock: FixedClock
) -> None:
    token = await embed_token(tenant)
    clock.now += timedelta(hours=1)
    response = await visitor.get("/widgets/summary", params={"token": token})
    assert response.status_code == 401
    assert "expired" in response.text


async def test_an_unknown_widget_is_not_found(tenant: Tenant, visitor: httpx.AsyncClient) -> None:
    response = await visitor.get("/widgets/secrets", params={"token": await embed_token(tenant)})
    assert response.status_code == 404


async def test_widgets_are_not_frameable_unless_origins_are_configured(
    tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    response = await visitor.get("/widgets/summary", params={"token": await embed_token(tenant)})
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_widgets_may_be_framed_by_the_configured_origins(
    database_url: str, clock: FixedClock
) -> None:
    settings = Settings(
        database_url=database_url,
        run_scheduler=False,
        log_format="console",
        embed_allowed_origins="https://intranet.example, https://wall.example:8443",
        embed_secret="s" * 40,
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app), browser(app) as client:
        from conftest import make_tenant

        tenant = await make_tenant(app)
        token = await embed_token(tenant)
        response = await client.get("/widgets/workers", params={"token": token})
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors https://intranet.example https://wall.example:8443" in policy
        assert "x-frame-options" not in response.headers
        dashboard = await client.get("/dashboard/sign-in")
        assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]
        for c in (tenant.admin, tenant.writer, tenant.reader, tenant.anonymous):
            await c.aclose()


async def test_an_embed_token_signs_in_to_a_read_only_team_view(
    tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await caseload(tenant)
    response = await sign_in(visitor, await embed_token(tenant, team_id="T-1"))
    assert response.status_code == 303
    html = (await visitor.get("/dashboard", params={"team_id": "T-2"})).text
    assert "Team T-1 view" in html
    assert ">C-2</a>" not in html
    assert (await visitor.get("/dashboard/cases/C-2")).status_code == 404
    assert (await visitor.get("/dashboard/cases/C-1")).status_code == 200


async def test_a_team_view_session_ends_when_its_token_expires(
    tenant: Tenant, visitor: httpx.AsyncClient, clock: FixedClock
) -> None:
    await sign_in(visitor, await embed_token(tenant, team_id="T-1"))
    clock.now += timedelta(hours=1, seconds=1)
    assert (await visitor.get("/dashboard")).status_code == 303


# CSV downloads


def csv_rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.text, newline="")))


async def test_each_dashboard_section_links_its_csv_with_the_filters_in_force(
    signed_in: httpx.AsyncClient,
) -> None:
    html = (await signed_in.get("/dashboard", params={"team_id": "T-1"})).text
    for name in ("overdue", "workers", "timeliness"):
        assert f'href="/dashboard/export/{name}.csv?team_id=T-1" download' in html


async def test_the_overdue_csv_lists_what_the_dashboard_shows_overdue(
    signed_in: httpx.AsyncClient,
) -> None:
    header, *rows = csv_rows(await signed_in.get("/dashboard/export/overdue.csv"))
    assert {(r[header.index("case_id")], r[header.index("status")]) for r in rows} == {
        ("C-1", "overdue"),
        ("C-3", "overdue"),
    }


async def test_the_workers_csv_follows_the_team_filter(signed_in: httpx.AsyncClient) -> None:
    header, *rows = csv_rows(
        await signed_in.get("/dashboard/export/workers.csv", params={"team_id": "T-2"})
    )
    assert [r[header.index("worker_id")] for r in rows] == ["W-2"]


async def test_a_csv_download_needs_a_signed_in_session(visitor: httpx.AsyncClient) -> None:
    response = await visitor.get("/dashboard/export/workers.csv")
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/sign-in")


async def test_an_unknown_csv_download_is_not_found(signed_in: httpx.AsyncClient) -> None:
    assert (await signed_in.get("/dashboard/export/secrets.csv")).status_code == 404


# Reading the dashboard as a manager does


async def test_the_header_shows_the_team_filter_in_force(signed_in: httpx.AsyncClient) -> None:
    html = (await signed_in.get("/dashboard", params={"team_id": "T-2"})).text
    assert re.search(r'class="masthead__scope">\s*Team T-2\s*</p>', html)


async def test_the_date_filter_is_entered_day_first(signed_in: httpx.AsyncClient) -> None:
    html = (await signed_in.get("/dashboard", params={"as_of": "03/11/2026"})).text
    assert 'datetime="2026-11-03T23:59:59.999999Z"' in html
    assert 'id="as_of" name="as_of" type="text"' in html
    assert 'value="03/11/2026"' in html


async def test_a_day_that_does_not_exist_is_a_400_page(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/dashboard", params={"as_of": "31/02/2026"})
    assert response.status_code == 400
    assert "as_of" in response.text


async def decided_late(app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient) -> str:
    """C-1's referral on Mon 2 Nov 2026 is due a decision by the end of Tue 3 Nov; it is
    made on Thu 5 Nov, after Wed 4 and Thu 5 Nov: two working days late."""
    await caseload(tenant)
    decision = event(
        "C-1-dec",
        "referral_decision_made",
        "C-1",
        "2026-11-05T10:00:00Z",
        data={"outcome": "strategy_discussion"},
    )
    assert (await tenant.writer.post("/v1/events", json=decision)).status_code in (200, 201)
    await sign_in(visitor, await read_key(app, tenant))
    return unescape(re.sub("<[^>]+>", "", (await visitor.get("/dashboard/cases/C-1")).text))


async def test_the_case_timeline_says_by_how_many_working_days_a_deadline_was_met_late(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    assert "Thu 5 Nov 2026, 2 working days late" in await decided_late(app, tenant, visitor)


async def test_the_case_timeline_gives_event_data_in_words(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await tenant.writer.post(
        "/v1/events/batch",
        json={
            "events": [
                event("C-7-icpc", "icpc_held", "C-7", "2026-11-02T10:00:00Z", data={"plan": True}),
                event(
                    "C-7-booked",
                    "review_scheduled",
                    "C-7",
                    "2026-11-03T10:00:00Z",
                    data={"review": "cp-review", "scheduled_for": "2026-12-01"},
                ),
            ]
        },
    )
    await sign_in(visitor, await read_key(app, tenant))
    html = (await visitor.get("/dashboard/cases/C-7")).text
    timeline = unescape(re.sub("<[^>]+>", "", html[html.index('class="timeline"') :]))
    assert "Child protection plan: Yes" in timeline
    assert "Review: Child protection review within 3 months" in timeline
    assert "Scheduled for: Tue 1 Dec 2026" in timeline
    for raw in ("True", "cp-review", "2026-12-01"):
        assert raw not in timeline


async def test_the_case_timeline_gives_an_outcome_in_words(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    assert "Outcome: Strategy discussion" in await decided_late(app, tenant, visitor)


async def test_month_labels_carry_the_year_and_the_running_month_reads_so_far(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await decided_late(app, tenant, visitor)
    html = (await visitor.get("/dashboard")).text
    start = html.index('<svg class="trend__chart"')
    chart = html[start : html.index("</svg>", start)]
    assert ">Dec 2025</text>" in chart
    assert ">Nov 2026 so far</text>" in chart
    assert 'class="trend__point trend__point--so-far"' in chart
    assert "Nov 2026 so far: 0% on time (0 of 1)" in chart


async def test_a_month_ended_by_as_of_is_drawn_whole(
    app: FastAPI, tenant: Tenant, visitor: httpx.AsyncClient
) -> None:
    await decided_late(app, tenant, visitor)
    html = (await visitor.get("/dashboard", params={"as_of": "31/10/2026"})).text
    timeliness = html[html.index('id="timeliness"') :]
    assert 'Oct <span class="year">2026</span></th>' in timeliness
    assert "so far" not in timeliness


async def test_the_favicon_is_linked_and_served(signed_in: httpx.AsyncClient) -> None:
    html = (await signed_in.get("/dashboard")).text
    href = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert href
    response = await signed_in.get(href[1])
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")


# Why it is late


async def record_reason(tenant: Tenant) -> None:
    """C-1's referral decision (overdue since Tue 3 Nov 2026) has a reason recorded."""
    reason = event(
        "C-1-why",
        "delay_reason_recorded",
        "C-1",
        "2026-11-04T09:00:00Z",
        data={
            "rule_id": "referral-decision",
            "reason": "awaiting_other_agency",
            "note": "police check",
        },
    )
    response = await tenant.writer.post("/v1/events", json=reason)
    assert response.status_code == 201, response.text


async def test_the_case_page_shows_the_reason_recorded_beside_the_deadline(
    tenant: Tenant, signed_in: httpx.AsyncClient
) -> None:
    await record_reason(tenant)
    html = (await signed_in.get("/dashboard/cases/C-1")).text
    assert "Reason recorded: Awaiting another agency (police check)." in unescape(html)


async def test_the_overdue_list_shows_the_reason_recorded_by_its_label(
    tenant: Tenant, signed_in: httpx.AsyncClient
) -> None:
    await record_reason(tenant)
    html = (await signed_in.get("/dashboard")).text
    assert '<span class="reason">Reason: Awaiting another agency</span>' in html
