"""Dashboard widgets and embed tokens: every figure equals a count made from /v1/obligations."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from conftest import FixedClock, Tenant, make_tenant
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain.rules import builtin_ruleset_text

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
OPEN = {"upcoming", "due_soon", "overdue"}
WORKERS = {"W-1": "T-1", "W-2": "T-1", "W-3": "T-2", "W-4": "T-2"}
Event = dict[str, Any]

# Steps a case can take after its referral; enough to open, meet, repeat, cancel and
# escalate every kind of children's rule, and to book reviews (at risk).
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("referral_decision_made", {"outcome": "assessment"}),
    ("referral_decision_made", {"outcome": "no_further_action"}),
    ("contact_made", {}),
    ("assessment_completed", {}),
    ("section47_started", {}),
    ("icpc_held", {"plan": True}),
    ("child_protection_plan_started", {}),
    ("core_group_held", {}),
    ("child_visited", {}),
    ("cp_review_held", {}),
    ("review_scheduled", {"review": "cp-review"}),
    ("case_allocated", {}),
    ("case_closed", {}),
    ("case_reopened", {}),
]


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


@st.composite
def case_log(draw: st.DrawFn, number: int) -> list[Event]:
    case_id = f"C-{number}"
    worker = draw(st.sampled_from([*WORKERS, None]))
    at = NOW - timedelta(days=draw(st.integers(5, 240)), minutes=draw(st.integers(0, 1440)))
    events: list[Event] = [
        {
            "id": f"{case_id}-0",
            "type": "referral_received",
            "case_id": case_id,
            "occurred_at": iso(at),
            "worker_id": worker,
            "team_id": WORKERS.get(worker or "", "T-2"),
        }
    ]
    for step in draw(st.lists(st.sampled_from(STEPS), max_size=10)):
        at += timedelta(hours=draw(st.integers(0, 24 * 40)))
        if at > NOW - timedelta(hours=1):
            break
        kind, data = step
        event: Event = {
            "id": f"{case_id}-{len(events)}",
            "type": kind,
            "case_id": case_id,
            "occurred_at": iso(at),
            "data": dict(data),
        }
        if kind == "review_scheduled":
            booked = at + timedelta(days=draw(st.integers(1, 150)))
            event["data"]["scheduled_for"] = booked.date().isoformat()
        if kind == "case_allocated":
            worker = draw(st.sampled_from(list(WORKERS)))
            event |= {"worker_id": worker, "team_id": WORKERS[worker]}
        events.append(event)
    return events


@st.composite
def caseloads(draw: st.DrawFn) -> list[list[Event]]:
    return [draw(case_log(n)) for n in range(draw(st.integers(1, 10)))]


# Hypothesis takes naive bounds and puts the zone on each instant it draws.
instants = st.datetimes(
    min_value=datetime(2026, 4, 1),  # noqa: DTZ001
    max_value=datetime(2026, 11, 20, 12),  # noqa: DTZ001
    timezones=st.just(UTC),
)
teams = st.sampled_from([None, "T-1", "T-2"])
workers = st.sampled_from([None, *WORKERS])
property_settings = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


async def seeded(app: FastAPI, logs: list[list[Event]]) -> Tenant:
    """A tenant holding `logs`, posted in two batches: the first half of every case creates
    it, the second changes what is stored (met, cancelled, re-booked, moved)."""
    tenant = await make_tenant(app)
    firsts = [e for log in logs for e in log[: len(log) // 2]]
    seconds = [e for log in logs for e in log[len(log) // 2 :]]
    for events in (firsts, seconds):
        if events:
            await post(tenant, *events)
    return tenant


async def close(tenant: Tenant) -> None:
    for client in (tenant.admin, tenant.writer, tenant.reader, tenant.anonymous):
        await client.aclose()


async def listed(tenant: Tenant, at: str) -> list[dict[str, Any]]:
    """Every obligation at `at`, page by page, as /v1/obligations presents them."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"as_of": at, "limit": 1000}
    while True:
        response = await tenant.reader.get("/v1/obligations", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]


def scope_params(team: str | None, worker: str | None) -> dict[str, str]:
    """The widget query parameters for a team and a worker, either or both."""
    return {k: v for k, v in (("team_id", team), ("worker_id", worker)) if v}


def scoped(items: list[dict[str, Any]], team: str | None, worker: str | None) -> list[Any]:
    return [
        o
        for o in items
        if (team is None or o["team_id"] == team) and (worker is None or o["worker_id"] == worker)
    ]


async def widget(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(f"/v1/dashboard/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


Allocated = tuple[str | None, str | None]  # worker_id, team_id


def caseload(logs: list[list[Event]], at: datetime) -> dict[str, Allocated]:
    """Each case open at `at` with the worker and team it was allocated to then: open from
    its first event, closed by `case_closed`, open again by `case_reopened`, allocated to
    the latest worker and team its events named."""
    found: dict[str, Allocated] = {}
    for log in logs:
        worker = team = None
        is_open = False
        started = False
        for e in sorted(log, key=lambda e: (datetime.fromisoformat(e["occurred_at"]), e["id"])):
            if datetime.fromisoformat(e["occurred_at"]) > at:
                break
            worker, team = e.get("worker_id") or worker, e.get("team_id") or team
            if not started or e["type"] == "case_reopened":
                is_open = started = True
            if e["type"] == "case_closed":
                is_open = False
        if is_open:
            found[log[0]["case_id"]] = (worker, team)
    return found


def scoped_caseload(
    cases: dict[str, Allocated], team: str | None, worker: str | None
) -> dict[str, Allocated]:
    return {
        c: (w, t)
        for c, (w, t) in cases.items()
        if (team is None or t == team) and (worker is None or w == worker)
    }


def expected_summary(items: list[dict[str, Any]], cases: dict[str, Allocated]) -> dict[str, Any]:
    open_items = [o for o in items if o["status"] in OPEN]
    counts = Counter(o["status"] for o in open_items)
    return {
        "open_cases": len(cases),
        "obligations": {
            "upcoming": counts["upcoming"],
            "due_soon": counts["due_soon"],
            "overdue": counts["overdue"],
            "at_risk": sum(o["at_risk"] for o in open_items),
            "escalated": sum(o["escalation_level"] >= 1 for o in open_items),
        },
        "by_rule": {
            rule: (
                sum(o["status"] == "due_soon" for o in open_items if o["rule_id"] == rule),
                sum(o["status"] == "overdue" for o in open_items if o["rule_id"] == rule),
            )
            for rule in {o["rule_id"] for o in open_items}
        },
    }


def expected_loads(
    items: list[dict[str, Any]], cases: dict[str, Allocated], keys: tuple[str, ...]
) -> dict[Any, Any]:
    """Per group: the open cases allocated to it at the instant, and the open deadlines
    carrying its ids; a group with only one of the two shows zeros for the other."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for o in items:
        if o["status"] in OPEN:
            groups[tuple(o[k] for k in keys)].append(o)
    caseloads: Counter[Any] = Counter(
        tuple({"worker_id": w, "team_id": t}[k] for k in keys) for w, t in cases.values()
    )
    return {
        key: {
            "open_cases": caseloads[key],
            "open_obligations": len(groups[key]),
            "due_soon": sum(o["status"] == "due_soon" for o in groups[key]),
            "overdue": sum(o["status"] == "overdue" for o in groups[key]),
            "oldest_overdue_working_days": max(
                (o["working_days_overdue"] for o in groups[key]), default=0
            ),
        }
        for key in {*groups, *caseloads}
    }


async def all_pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    params["limit"] = 3
    while True:
        body = await widget(client, path, **params)
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]


def month(instant: str) -> str:
    return f"{datetime.fromisoformat(instant).astimezone(LONDON):%Y-%m}"


def twelve_months_to(day: date) -> list[str]:
    first = day.year * 12 + day.month - 1 - 11
    return [f"{(first + i) // 12}-{(first + i) % 12 + 1:02d}" for i in range(12)]


# Every figure equals a count made from the obligations list


@given(logs=caseloads(), at=instants, team=teams, worker=workers)
@property_settings
async def test_summary_counts_equal_counts_from_the_obligations_list(
    app: FastAPI,
    clock: FixedClock,
    logs: list[list[Event]],
    at: datetime,
    team: str | None,
    worker: str | None,
) -> None:
    clock.now = NOW
    tenant = await seeded(app, logs)
    filters = scope_params(team, worker)
    try:
        body = await widget(tenant.reader, "summary", as_of=iso(at), **filters)
        expected = expected_summary(
            scoped(await listed(tenant, iso(at)), team, worker),
            scoped_caseload(caseload(logs, at), team, worker),
        )
        assert body["open_cases"] == expected["open_cases"]
        assert body["obligations"] == expected["obligations"]
        got = {r["rule_id"]: (r["due_soon"], r["overdue"]) for r in body["by_rule"]}
        assert got == expected["by_rule"]
    finally:
        await close(tenant)


@given(logs=caseloads(), at=instants, team=teams)
@property_settings
async def test_worker_loads_equal_counts_from_the_obligations_list(
    app: FastAPI, clock: FixedClock, logs: list[list[Event]], at: datetime, team: str | None
) -> None:
    clock.now = NOW
    tenant = await seeded(app, logs)
    filters = {"team_id": team} if team else {}
    try:
        items = await all_pages(tenant.reader, "workers", as_of=iso(at), **filters)
        got = {(i.pop("worker_id"), i.pop("team_id")): i for i in items}
        listing = scoped(await listed(tenant, iso(at)), team, None)
        cases = scoped_caseload(caseload(logs, at), team, None)
        assert got == expected_loads(listing, cases, ("worker_id", "team_id"))
    finally:
        await close(tenant)


@given(logs=caseloads(), at=instants)
@property_settings
async def test_team_loads_equal_counts_from_the_obligations_list(
    app: FastAPI, clock: FixedClock, logs: list[list[Event]], at: datetime
) -> None:
    clock.now = NOW
    tenant = await seeded(app, logs)
    try:
        items = await all_pages(tenant.reader, "teams", as_of=iso(at))
        got = {(i.pop("team_id"),): i for i in items}
        expected = expected_loads(await listed(tenant, iso(at)), caseload(logs, at), ("team_id",))
        assert got == expected
    finally:
        await close(tenant)


@given(logs=caseloads(), at=instants, team=teams, worker=workers)
@property_settings
async def test_timeliness_equals_completions_in_the_obligations_list(
    app: FastAPI,
    clock: FixedClock,
    logs: list[list[Event]],
    at: datetime,
    team: str | None,
    worker: str | None,
) -> None:
    clock.now = NOW
    tenant = await seeded(app, logs)
    filters = scope_params(team, worker)
    try:
        body = await widget(tenant.reader, "timeliness", as_of=iso(at), **filters)
        months = twelve_months_to(at.astimezone(LONDON).date())
        # Missed then cancelled counts as late, in the month it was cancelled.
        judged = [
            (month(o["met_at"]), o["rule_id"], o["status"])
            if o["status"] in ("met", "met_late")
            else (month(o["cancelled_at"]), o["rule_id"], "met_late")
            for o in scoped(await listed(tenant, iso(at)), team, worker)
            if o["status"] in ("met", "met_late") or o["missed"]
        ]
        completions = Counter(j for j in judged if j[0] in months)
        rules = sorted({rule for _, rule, _ in completions})
        expected = []
        for period in months:
            for rule in rules:
                on_time = completions[(period, rule, "met")]
                late = completions[(period, rule, "met_late")]
                done = on_time + late
                rate = round(on_time / done, 4) if done else None
                expected.append([period, rule, done, on_time, late, rate])
        got = [
            [i["period"], i["rule_id"], i["completed"], i["on_time"], i["late"], i["on_time_rate"]]
            for i in body["items"]
        ]
        assert got == expected
    finally:
        await close(tenant)


# Examples


def referral(case_id: str, at: str, worker: str | None = "W-1", team: str = "T-1") -> Event:
    return {
        "id": f"{case_id}-ref",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": at,
        "worker_id": worker,
        "team_id": team,
    }


def later(case_id: str, kind: str, at: str, **data: Any) -> Event:
    return {"id": f"{case_id}-{kind}", "type": kind, "case_id": case_id, "occurred_at": at} | (
        {"data": data} if data else {}
    )


async def post(tenant: Tenant, *events: Event) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"events": list(events)})
    assert {r["status"] for r in response.json()["results"]} == {"created"}, response.text


async def test_the_summary_has_exactly_the_documented_shape(tenant: Tenant) -> None:
    await post(tenant, referral("C-1", "2026-11-02T10:00:00Z"))
    body = await widget(tenant.reader, "summary")
    assert set(body) == {"as_of", "open_cases", "obligations", "by_rule"}
    assert set(body["obligations"]) == {"upcoming", "due_soon", "overdue", "at_risk", "escalated"}
    assert set(body["by_rule"][0]) == {"rule_id", "rule_name", "due_soon", "overdue"}


async def test_the_summary_is_as_of_now_by_default_in_utc(tenant: Tenant) -> None:
    body = await widget(tenant.reader, "summary")
    assert body["as_of"] == "2026-11-20T12:00:00Z"


async def test_an_empty_organisation_has_zero_everywhere(tenant: Tenant) -> None:
    body = await widget(tenant.reader, "summary")
    assert body["open_cases"] == 0
    assert set(body["obligations"].values()) == {0}
    assert body["by_rule"] == []


async def test_an_overdue_obligation_escalates_just_after_its_first_threshold(
    tenant: Tenant,
) -> None:
    # Decision due end of Tue 3 Nov; level 1 one working day later, at the end of Wed 4 Nov.
    await post(tenant, referral("C-1", "2026-11-02T10:00:00Z"))
    threshold = "2026-11-04T23:59:59.999999Z"
    just_after = "2026-11-05T00:00:00Z"
    at = await widget(tenant.reader, "summary", as_of=threshold)
    after = await widget(tenant.reader, "summary", as_of=just_after)
    decision = {"referral-decision", "first-contact"}
    assert at["obligations"]["escalated"] == 0
    assert after["obligations"]["escalated"] == 1
    assert {r["rule_id"] for r in after["by_rule"] if r["overdue"]} >= decision - {"first-contact"}


async def test_an_obligation_met_after_as_of_counts_as_open_at_as_of(tenant: Tenant) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-10T10:00:00Z", outcome="assessment"),
    )
    before = await widget(tenant.reader, "summary", as_of="2026-11-06T12:00:00Z")
    after = await widget(tenant.reader, "summary", as_of="2026-11-11T12:00:00Z")
    overdue_before = {r["rule_id"]: r["overdue"] for r in before["by_rule"]}
    overdue_after = {r["rule_id"]: r["overdue"] for r in after["by_rule"]}
    assert overdue_before["referral-decision"] == 1
    assert overdue_after.get("referral-decision", 0) == 0


async def up_to_date_case(tenant: Tenant, case_id: str, worker: str, team: str) -> None:
    """A referral contacted and decided on at once: open, allocated, nothing running."""
    await post(
        tenant,
        referral(case_id, "2026-11-02T10:00:00Z", worker=worker, team=team),
        later(case_id, "contact_made", "2026-11-02T11:00:00Z"),
        later(case_id, "referral_decision_made", "2026-11-02T12:00:00Z", outcome="early_help"),
    )
    running = await tenant.reader.get(
        "/v1/obligations", params={"case_id": case_id, "status": "upcoming,due_soon,overdue"}
    )
    assert running.json()["items"] == []


async def test_a_worker_whose_cases_have_nothing_running_is_in_the_workers_widget(
    tenant: Tenant,
) -> None:
    for number in range(1, 6):
        await up_to_date_case(tenant, f"C-{number}", "W-9", "T-3")
    items = (await widget(tenant.reader, "workers"))["items"]
    assert items == [
        {
            "worker_id": "W-9",
            "team_id": "T-3",
            "open_cases": 5,
            "open_obligations": 0,
            "due_soon": 0,
            "overdue": 0,
            "oldest_overdue_working_days": 0,
        }
    ]
    teams = (await widget(tenant.reader, "teams"))["items"]
    assert [(t["team_id"], t["open_cases"], t["overdue"]) for t in teams] == [("T-3", 5, 0)]
    assert (await widget(tenant.reader, "summary"))["open_cases"] == 5


async def test_a_closed_case_leaves_the_caseload_and_a_reopened_one_comes_back(
    tenant: Tenant,
) -> None:
    await up_to_date_case(tenant, "C-1", "W-9", "T-3")
    await post(
        tenant,
        later("C-1", "case_closed", "2026-11-05T10:00:00Z"),
        later("C-1", "case_reopened", "2026-11-12T10:00:00Z"),
    )
    counts = [
        (await widget(tenant.reader, "summary", as_of=at))["open_cases"]
        for at in ("2026-11-02T09:59:59Z", "2026-11-03T12:00:00Z", "2026-11-06T12:00:00Z")
    ]
    assert counts == [0, 1, 0]
    assert (await widget(tenant.reader, "summary"))["open_cases"] == 1


async def test_open_cases_follow_the_allocation_at_as_of(tenant: Tenant) -> None:
    await up_to_date_case(tenant, "C-1", "W-1", "T-1")
    await post(
        tenant,
        later("C-1", "case_allocated", "2026-11-10T09:00:00Z")
        | {"worker_id": "W-3", "team_id": "T-2"},
    )

    async def caseloads(at: str) -> dict[str | None, int]:
        items = (await widget(tenant.reader, "workers", as_of=at))["items"]
        return {i["worker_id"]: i["open_cases"] for i in items}

    assert await caseloads("2026-11-09T12:00:00Z") == {"W-1": 1}
    assert await caseloads("2026-11-10T09:00:00Z") == {"W-3": 1}
    before = await widget(tenant.reader, "summary", as_of="2026-11-09T12:00:00Z", worker_id="W-1")
    after = await widget(tenant.reader, "summary", as_of="2026-11-11T12:00:00Z", worker_id="W-1")
    assert (before["open_cases"], after["open_cases"]) == (1, 0)


async def test_workers_are_ranked_by_overdue_obligations_worst_first(tenant: Tenant) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-16T10:00:00Z", worker="W-light"),
        referral("C-2", "2026-10-01T10:00:00Z", worker="W-heavy"),
        referral("C-3", "2026-10-02T10:00:00Z", worker="W-heavy"),
    )
    items = (await widget(tenant.reader, "workers"))["items"]
    assert [i["worker_id"] for i in items] == ["W-heavy", "W-light"]
    assert items[0]["overdue"] > items[1]["overdue"]


async def test_unallocated_cases_are_counted_under_no_worker(tenant: Tenant) -> None:
    await post(tenant, referral("C-1", "2026-11-16T10:00:00Z", worker=None))
    items = (await widget(tenant.reader, "workers"))["items"]
    assert [(i["worker_id"], i["team_id"], i["open_cases"]) for i in items] == [(None, "T-1", 1)]


async def test_the_oldest_overdue_is_counted_in_working_days(tenant: Tenant) -> None:
    # Referral Mon 2 Nov: decision due Tue 3 Nov; by Fri 20 Nov that is 13 working days late.
    await post(tenant, referral("C-1", "2026-11-02T10:00:00Z"))
    items = (await widget(tenant.reader, "teams"))["items"]
    assert items[0]["oldest_overdue_working_days"] == 13


async def test_a_review_booked_in_time_is_no_longer_at_risk_until_the_booking_is_voided(
    tenant: Tenant,
) -> None:
    # First review due at the end of Fri 27 Nov 2026, unbooked 10 working days before: at risk.
    await post(
        tenant,
        referral("C-1", "2026-08-20T10:00:00Z"),
        later("C-1", "child_protection_plan_started", "2026-08-27T10:00:00Z"),
    )
    booking = later(
        "C-1",
        "review_scheduled",
        "2026-11-19T10:00:00Z",
        review="cp-review",
        scheduled_for="2026-11-25",
    )
    unbooked = await widget(tenant.reader, "summary")
    await post(tenant, booking)
    booked = await widget(tenant.reader, "summary")
    voided = await tenant.writer.post(
        f"/v1/events/{booking['id']}/void", json={"reason": "booked in error"}
    )
    assert voided.status_code == 200, voided.text
    again = await widget(tenant.reader, "summary")
    at_risk = [s["obligations"]["at_risk"] for s in (unbooked, booked, again)]
    assert at_risk == [1, 0, 1]


async def test_a_worker_page_cursor_keeps_the_instant_of_the_first_page(
    tenant: Tenant, clock: FixedClock
) -> None:
    await post(
        tenant,
        *(referral(f"C-{n}", "2026-11-16T10:00:00Z", worker=f"W-{n}") for n in range(3)),
    )
    # On 20 November each referral's decision and first contact are overdue; by June
    # the assessment would be too.
    first = await widget(tenant.reader, "workers", limit=2)
    clock.now = datetime(2027, 6, 1, tzinfo=UTC)
    rest = await widget(tenant.reader, "workers", limit=2, cursor=first["next_cursor"])
    assert [i["overdue"] for i in first["items"] + rest["items"]] == [2, 2, 2]
    assert rest["next_cursor"] is None


async def test_a_cursor_used_with_another_as_of_is_refused(tenant: Tenant) -> None:
    await post(tenant, *(referral(f"C-{n}", "2026-11-16T10:00:00Z", f"W-{n}") for n in range(3)))
    first = await widget(tenant.reader, "workers", limit=1)
    response = await tenant.reader.get(
        "/v1/dashboard/workers",
        params={"cursor": first["next_cursor"], "as_of": "2026-11-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "cursor"


async def test_a_malformed_cursor_is_refused(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/dashboard/teams", params={"cursor": "nonsense"})
    assert response.status_code == 422


async def test_timeliness_shows_periods_without_completions_with_a_null_rate(
    tenant: Tenant,
) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-03T10:00:00Z", outcome="assessment"),
    )
    items = (await widget(tenant.reader, "timeliness", rule_id="referral-decision"))["items"]
    assert [i["period"] for i in items][-2:] == ["2026-10", "2026-11"]
    assert items[-2] | {"period": ""} == {
        "period": "",
        "rule_id": "referral-decision",
        "completed": 0,
        "on_time": 0,
        "late": 0,
        "late_with_reason": 0,
        "late_without_reason": 0,
        "on_time_rate": None,
    }
    assert (items[-1]["completed"], items[-1]["on_time_rate"]) == (1, 1.0)


async def test_timeliness_counts_a_late_completion_as_late(tenant: Tenant) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-09T10:00:00Z", outcome="assessment"),
    )
    items = (await widget(tenant.reader, "timeliness", rule_id="referral-decision"))["items"]
    assert (items[-1]["late"], items[-1]["on_time_rate"]) == (1, 0.0)


async def test_timeliness_by_week_labels_iso_weeks_from_monday(tenant: Tenant) -> None:
    body = await widget(
        tenant.reader, "timeliness", interval="week", **{"from": "2026-11-04", "to": "2026-11-20"}
    )
    await post(tenant, referral("C-1", "2026-11-02T10:00:00Z"))
    assert body["items"] == []
    await post(
        tenant,
        later("C-1", "referral_decision_made", "2026-11-03T10:00:00Z", outcome="assessment"),
    )
    body = await widget(
        tenant.reader, "timeliness", interval="week", **{"from": "2026-11-04", "to": "2026-11-20"}
    )
    periods = [i["period"] for i in body["items"] if i["rule_id"] == "referral-decision"]
    assert periods == ["2026-W45", "2026-W46", "2026-W47"]


async def test_timeliness_refuses_a_range_of_more_than_104_periods(tenant: Tenant) -> None:
    response = await tenant.reader.get(
        "/v1/dashboard/timeliness", params={"interval": "week", "from": "2020-01-01"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "from"


async def test_timeliness_refuses_from_after_to(tenant: Tenant) -> None:
    response = await tenant.reader.get(
        "/v1/dashboard/timeliness", params={"from": "2026-11-02", "to": "2026-10-01"}
    )
    assert response.status_code == 422


async def test_timeliness_refuses_an_unknown_interval(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/dashboard/timeliness", params={"interval": "day"})
    assert response.status_code == 422


async def test_widgets_refuse_a_naive_as_of(tenant: Tenant) -> None:
    response = await tenant.reader.get(
        "/v1/dashboard/summary", params={"as_of": "2026-11-02T10:00:00"}
    )
    assert response.status_code == 422


async def test_widgets_need_an_api_key(tenant: Tenant) -> None:
    for path in ("summary", "workers", "teams", "timeliness"):
        response = await tenant.anonymous.get(f"/v1/dashboard/{path}")
        assert response.status_code == 401


async def test_widgets_count_only_the_callers_organisation(app: FastAPI, tenant: Tenant) -> None:
    other = await make_tenant(app)
    await post(other, referral("C-1", "2026-11-02T10:00:00Z"))
    assert (await widget(tenant.reader, "summary"))["open_cases"] == 0
    assert (await widget(tenant.reader, "workers"))["items"] == []
    await close(other)


# Embed tokens


async def test_an_admin_gets_an_embed_token_expiring_after_its_ttl(tenant: Tenant) -> None:
    response = await tenant.admin.post(
        "/v1/embed-tokens", json={"team_id": "T-1", "ttl_seconds": 3600}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["expires_at"] == "2026-11-20T13:00:00Z"
    assert body["team_id"] == "T-1"
    assert body["widgets"]["summary"] == f"/widgets/summary?token={body['token']}"


async def test_only_an_admin_may_create_an_embed_token(tenant: Tenant) -> None:
    response = await tenant.reader.post("/v1/embed-tokens", json={"ttl_seconds": 3600})
    assert response.status_code == 403


async def test_an_embed_token_lives_at_least_a_minute_and_at_most_a_year(tenant: Tenant) -> None:
    for ttl in (59, 367 * 86400):
        response = await tenant.admin.post("/v1/embed-tokens", json={"ttl_seconds": ttl})
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/ttl_seconds"


# Timeliness stays exact as completions are voided, moved and seen in another timezone


async def completions(tenant: Tenant, **params: Any) -> dict[tuple[str, str], tuple[int, int]]:
    """(period, rule) -> (completed, on_time), for the periods with any completion."""
    items = (await widget(tenant.reader, "timeliness", **params))["items"]
    return {
        (i["period"], i["rule_id"]): (i["completed"], i["on_time"]) for i in items if i["completed"]
    }


async def test_voiding_the_event_that_met_a_deadline_takes_it_out_of_timeliness(
    tenant: Tenant,
) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-03T10:00:00Z", outcome="assessment"),
    )
    response = await tenant.writer.post(
        "/v1/events/C-1-referral_decision_made/void", json={"reason": "posted to the wrong case"}
    )
    assert response.status_code == 200, response.text
    assert await completions(tenant, rule_id="referral-decision") == {}
    assert await completions(tenant, rule_id="referral-decision", team_id="T-1") == {}


async def test_a_case_moved_to_another_team_takes_its_completions_with_it(tenant: Tenant) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z", team="T-1"),
        later("C-1", "referral_decision_made", "2026-11-03T10:00:00Z", outcome="assessment"),
        later("C-1", "case_allocated", "2026-11-04T10:00:00Z") | {"team_id": "T-2"},
    )
    decided = {("2026-11", "referral-decision"): (1, 1)}
    assert await completions(tenant, rule_id="referral-decision", team_id="T-1") == {}
    assert await completions(tenant, rule_id="referral-decision", team_id="T-2") == decided
    assert await completions(tenant, rule_id="referral-decision") == decided


async def test_a_completion_made_later_on_the_day_of_as_of_is_not_counted(
    tenant: Tenant,
) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-19T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-20T09:00:00Z", outcome="assessment"),
    )
    for scope in ({}, {"team_id": "T-1"}):
        rule = {"rule_id": "referral-decision", **scope}
        before = await completions(tenant, as_of="2026-11-20T08:59:59Z", **rule)
        after = await completions(tenant, as_of="2026-11-20T09:00:00Z", **rule)
        assert (before, after) == ({}, {("2026-11", "referral-decision"): (1, 1)}), scope


async def test_a_deadline_met_at_its_due_instant_counts_as_on_time_at_every_scope(
    tenant: Tenant,
) -> None:
    # A referral on Monday 2 November 2026 is due a decision by the end of Tuesday 3 November.
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-03T23:59:59.999999Z", outcome="assessment"),
    )
    on_time = {("2026-11", "referral-decision"): (1, 1)}
    assert await completions(tenant, rule_id="referral-decision") == on_time
    assert await completions(tenant, rule_id="referral-decision", team_id="T-1") == on_time
    assert await completions(tenant, rule_id="referral-decision", worker_id="W-1") == on_time


async def test_a_deadline_missed_then_cancelled_counts_as_late_at_every_scope(
    tenant: Tenant,
) -> None:
    # A referral on Monday 2 November 2026 is due a decision by the end of Tuesday 3 November;
    # closing the case on 10 November cancels a deadline that was already missed.
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "case_closed", "2026-11-10T10:00:00Z"),
    )
    late = {("2026-11", "referral-decision"): (1, 0)}
    for scope in ({}, {"team_id": "T-1"}, {"worker_id": "W-1"}):
        assert await completions(tenant, rule_id="referral-decision", **scope) == late, scope
    same_day = await completions(tenant, rule_id="referral-decision", as_of="2026-11-10T11:00:00Z")
    assert same_day == late


async def test_a_deadline_cancelled_before_it_fell_due_is_not_counted(tenant: Tenant) -> None:
    await post(
        tenant,
        referral("C-1", "2026-11-02T10:00:00Z"),
        later("C-1", "case_closed", "2026-11-03T16:00:00Z"),
    )
    for scope in ({}, {"team_id": "T-1"}, {"worker_id": "W-1"}):
        assert await completions(tenant, rule_id="referral-decision", **scope) == {}, scope


async def test_a_new_timezone_counts_completions_on_their_new_local_days(tenant: Tenant) -> None:
    # 01:30 UTC on 1 November 2026 is November in London and still 31 October in New York.
    await post(
        tenant,
        referral("C-1", "2026-10-29T10:00:00Z"),
        later("C-1", "referral_decision_made", "2026-11-01T01:30:00Z", outcome="assessment"),
        later("C-1", "case_closed", "2026-11-02T10:00:00Z"),
    )
    late = (1, 0)
    assert await completions(tenant, rule_id="referral-decision") == {
        ("2026-11", "referral-decision"): late
    }
    text = builtin_ruleset_text("england-children").replace(
        'timezone = "Europe/London"', 'timezone = "America/New_York"'
    )
    response = await tenant.admin.put(
        "/v1/rules", content=text, headers={"Content-Type": "application/toml"}
    )
    await tenant.activate(response)
    moved = {("2026-10", "referral-decision"): late}
    assert await completions(tenant, rule_id="referral-decision") == moved
    assert await completions(tenant, rule_id="referral-decision", team_id="T-1") == moved
