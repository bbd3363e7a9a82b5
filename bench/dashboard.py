"""Dashboard latency on PostgreSQL at scale; prints JSON.

Loads a synthetic authority straight into the tables (COPY, not ingest: this measures
reads), by default 1,000,000 obligations over 100,000 cases and 2,000 workers in 40 teams,
with about a third of the cases open (a fifth of those moved from an earlier worker). Then,
against `caseclock serve`, times each widget endpoint (sequential requests, after a warm-up)
and the HTML dashboard's, a worker's page's and a team's page's first render after
sign-in, and runs EXPLAIN (ANALYZE, BUFFERS) on
every statement the widgets issue, to show which indexes serve them.

Machines of this kind differ by up to 2x from day to day, so the same run measures a
yardstick: an index-only count of the organisation's open obligations over the open-work
index, straight through asyncpg; each widget's p95 is also printed as a ratio to its p95.

    .venv/bin/python -m bench.dashboard [--cases 100000] [--requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.engine import Connection

from bench.harness import (
    BIN,
    admin_key,
    caseclock_env,
    free_port,
    fresh_database,
    median,
    percentile,
    server,
)
from service.domain.rules import builtin_ruleset
from service.store import dashboard_reads
from service.store.completions import rebuild_rollup
from service.store.db import make_engine, make_session_factory, transaction

OBLIGATIONS_PER_CASE = 10
WORKERS = 2000
TEAMS = 40
HISTORY_DAYS = 3 * 365
TARGET_WIDGET_P95_MS = 50
TARGET_FIRST_RENDER_MS = 300
COLUMNS = (
    "org_id",
    "id",
    "case_id",
    "rule_id",
    "rule_name",
    "sequence",
    "opened_at",
    "due_at",
    "warn_at",
    "escalate_at",
    "at_risk_periods",
    "met_at",
    "cancelled_at",
    "closed_at",
    "opened_by_event",
    "met_by_event",
    "cancelled_by_event",
    "worker_id",
    "team_id",
    "first_escalation_at",
    "digest",
)


def _end_of_day(instant: datetime) -> datetime:
    return instant.replace(hour=23, minute=59, second=59, microsecond=999999)


def _before(now: datetime, opened: datetime, closed: datetime, rng: random.Random) -> datetime:
    """A closing drawn past `now` moves to a random instant since `opened`, so completions
    spread over the recent past instead of piling up just before now."""
    return closed if closed < now else opened + (now - opened) * rng.random()


Rows = list[tuple[Any, ...]]


def _case_periods(
    org_id: str,
    case_id: str,
    started: datetime,
    still_open: bool,
    now: datetime,
    allocation: tuple[str, str],
    rng: random.Random,
) -> Rows:
    """The case's open periods: closed cases end before now, and a fifth of the open ones
    were moved to their worker from an earlier one."""
    if not still_open:
        return [(org_id, case_id, 0, started, _before(now, started, now, rng), *allocation)]
    if rng.random() < 0.2:
        moved = started + (now - started) * rng.random()
        earlier = (f"W-{rng.randrange(WORKERS):04d}", allocation[1])
        return [
            (org_id, case_id, 0, started, moved, *earlier),
            (org_id, case_id, 1, moved, None, *allocation),
        ]
    return [(org_id, case_id, 0, started, None, *allocation)]


def synthetic(
    org_id: str, cases: int, now: datetime, seed: int = 5
) -> Iterator[tuple[tuple[Any, ...], Rows, Rows, Rows]]:
    """(case row, obligation rows, risk period rows, case period rows) per case: mostly met,
    recent ones open."""
    rng = random.Random(seed)
    rules = [(r.id, r.name) for r in builtin_ruleset("england-children").rules]
    for number in range(cases):
        case_id = f"C{number:07d}"
        worker = rng.randrange(WORKERS)
        worker_id, team_id = f"W-{worker:04d}", f"T-{worker % TEAMS:02d}"
        started = now - timedelta(days=rng.uniform(3, HISTORY_DAYS))
        still_open = started > now - timedelta(days=300) and rng.random() < 0.75
        open_from = OBLIGATIONS_PER_CASE - rng.randint(2, 4) if still_open else OBLIGATIONS_PER_CASE
        obligations, periods = [], []
        opened = started
        for n in range(OBLIGATIONS_PER_CASE):
            rule_id, rule_name = rules[(number + n) % len(rules)]
            due = _end_of_day(opened + timedelta(days=rng.choice([1, 3, 14, 21, 42, 63, 90])))
            met = cancelled = None
            if n < open_from and opened < now - timedelta(hours=1):
                if rng.random() < 0.08:
                    cancelled = _before(
                        now, opened, opened + timedelta(days=rng.uniform(0, 10)), rng
                    )
                else:
                    late = rng.random() < 0.15
                    met = _before(
                        now,
                        opened,
                        (due + timedelta(days=rng.uniform(0.1, 20)))
                        if late
                        else (opened + (due - opened) * rng.uniform(0.1, 1.0)),
                        rng,
                    )
            else:
                # Open work: a spread of upcoming, due soon and overdue deadlines.
                due = _end_of_day(now + timedelta(days=rng.uniform(-25, 75)))
                opened = min(opened, due - timedelta(days=1), now - timedelta(hours=1))
            closed = met or cancelled
            ob_id = f"ob_{number:08d}{n:02d}"
            obligations.append(
                (
                    org_id,
                    ob_id,
                    case_id,
                    rule_id,
                    rule_name,
                    1,
                    opened,
                    due,
                    due - timedelta(days=5),
                    json.dumps([(due + timedelta(days=d)).isoformat() for d in (7, 21)]),
                    "[]",
                    met,
                    cancelled,
                    closed,
                    f"{case_id}-{n}",
                    f"{case_id}-{n}m" if met else None,
                    f"{case_id}-{n}c" if cancelled else None,
                    worker_id,
                    team_id,
                    due + timedelta(days=7),
                    ob_id,  # any value: only re-derivation reads it
                )
            )
            if closed is None and rule_id in ("cp-review", "cla-review") and rng.random() < 0.3:
                periods.append((org_id, ob_id, due - timedelta(days=14), due))
            opened = closed or opened + timedelta(days=1)
        case = (org_id, case_id, worker_id, team_id, "open" if still_open else "closed", now)
        allocation = (worker_id, team_id)
        yield (
            case,
            obligations,
            periods,
            _case_periods(org_id, case_id, started, still_open, now, allocation, rng),
        )


async def load(dsn: str, org_id: str, cases: int, now: datetime) -> dict[str, Any]:
    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        case_rows: list[tuple[Any, ...]] = []
        obligation_rows: list[tuple[Any, ...]] = []
        period_rows: list[tuple[Any, ...]] = []
        case_period_rows: list[tuple[Any, ...]] = []

        async def flush() -> None:
            await connection.copy_records_to_table(
                "cases",
                records=case_rows,
                columns=["org_id", "case_id", "worker_id", "team_id", "status", "updated_at"],
            )
            await connection.copy_records_to_table(
                "obligations", records=obligation_rows, columns=list(COLUMNS)
            )
            await connection.copy_records_to_table(
                "risk_periods",
                records=period_rows,
                columns=["org_id", "obligation_id", "starts_at", "ends_at"],
            )
            await connection.copy_records_to_table(
                "case_periods",
                records=case_period_rows,
                columns=[
                    "org_id",
                    "case_id",
                    "position",
                    "starts_at",
                    "ends_at",
                    "worker_id",
                    "team_id",
                ],
            )
            case_rows.clear()
            obligation_rows.clear()
            period_rows.clear()
            case_period_rows.clear()

        totals = {"cases": 0, "obligations": 0, "risk_periods": 0}
        for case, obligations, periods, case_periods in synthetic(org_id, cases, now):
            case_rows.append(case)
            obligation_rows.extend(obligations)
            period_rows.extend(periods)
            case_period_rows.extend(case_periods)
            totals["cases"] += 1
            totals["obligations"] += len(obligations)
            totals["risk_periods"] += len(periods)
            if len(obligation_rows) >= 50_000:
                await flush()
        await flush()
        await connection.execute("VACUUM ANALYZE")
        totals["open_obligations"] = await connection.fetchval(
            "SELECT count(*) FROM obligations WHERE closed_at IS NULL"
        )
        totals["open_cases"] = await connection.fetchval(
            "SELECT count(*) FROM case_periods WHERE ends_at IS NULL"
        )
        totals["load_seconds"] = round(time.perf_counter() - started, 1)
        return totals
    finally:
        await connection.close()


async def count_completions(url: str, org_id: str) -> float:
    """Build the daily completions rollup from the loaded obligations, as a migration does."""
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        async with transaction(make_session_factory(engine)) as session:
            calendar = builtin_ruleset("england-children").calendar
            await rebuild_rollup(session, org_id, calendar)
    finally:
        await engine.dispose()
    return round(time.perf_counter() - started, 1)


def _plan_summary(plan: dict[str, Any]) -> dict[str, Any]:
    indexes: set[str] = set()
    scans: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            indexes.add(node["Index Name"])
        if node.get("Node Type") == "Seq Scan":
            scans.add(node.get("Relation Name", "?"))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {
        "indexes": sorted(indexes),
        "seq_scans": sorted(scans),
        "execution_ms": round(plan["Execution Time"], 2),
    }


async def explain(
    url: str, org_id: str, team_id: str, worker_id: str, now: datetime
) -> dict[str, Any]:
    """EXPLAIN ANALYZE every statement the widget functions issue, as they issue it."""
    engine = make_engine(url)
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _capture(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    calendar = builtin_ruleset("england-children").calendar
    factory = make_session_factory(engine)
    spans = dashboard_reads.periods(
        calendar, calendar.local_date(now - timedelta(days=330)), calendar.local_date(now), "month"
    )
    report: dict[str, Any] = {}
    scopes = {
        "org": dashboard_reads.Scope(org_id),
        "team": dashboard_reads.Scope(org_id, team_id),
        "worker": dashboard_reads.Scope(org_id, worker_id=worker_id),
    }
    async with factory() as session:
        for scope_name, scope in scopes.items():
            calls = {
                "summary: by rule": dashboard_reads.rule_counts(
                    session, scope, now, builtin_ruleset("england-children")
                ),
                "summary: open cases": dashboard_reads.open_cases(session, scope, now),
                "summary: at risk": dashboard_reads.at_risk_count(session, scope, now),
                "workers": dashboard_reads.loads(
                    session, scope, now, calendar, by="worker", limit=101
                ),
                "teams": dashboard_reads.loads(session, scope, now, calendar, by="team", limit=101),
                "timeliness": dashboard_reads.timeliness(session, scope, now, spans, calendar),
                "overdue_page": dashboard_reads.listed(
                    session, scope, now, calendar, "overdue", limit=25
                ),
                "due_soon_page": dashboard_reads.listed(
                    session, scope, now, calendar, "due_soon", limit=25
                ),
            }
            if scope_name != "org":
                calls["caseload_page"] = dashboard_reads.caseload(session, scope, now, limit=51)
            for name, call in calls.items():
                captured.clear()
                await call
                plans = []
                for statement, parameters in list(captured):
                    result = await session.connection()
                    raw = await result.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
                    )
                    plan = raw.scalar_one()
                    plans.append(
                        _plan_summary((json.loads(plan) if isinstance(plan, str) else plan)[0])
                    )
                report[f"{name} ({scope_name})"] = plans
    await engine.dispose()
    return report


async def yardstick(dsn: str, org_id: str, requests: int) -> dict[str, float]:
    """An index-only count of the open obligations over the open-work index: the least a
    widget that counts open work can cost on this machine today."""
    connection = await asyncpg.connect(dsn)
    try:
        statement = await connection.prepare(
            "SELECT count(*) FROM obligations WHERE org_id = $1 AND closed_at IS NULL"
        )
        for _ in range(5):
            await statement.fetchval(org_id)
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            await statement.fetchval(org_id)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()
    return {
        "p50_ms": round(median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
    }


def time_requests(
    client: httpx.Client, path: str, params: dict[str, str], requests: int
) -> dict[str, float]:
    for _ in range(5):
        client.get(path, params=params).raise_for_status()
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
    }


def measure(base: str, key: str, requests: int, team_id: str, worker_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    endpoints: dict[str, tuple[str, dict[str, str]]] = {
        "summary": ("/v1/dashboard/summary", {}),
        "summary?team_id": ("/v1/dashboard/summary", {"team_id": team_id}),
        "summary?worker_id": ("/v1/dashboard/summary", {"worker_id": worker_id}),
        "workers": ("/v1/dashboard/workers", {}),
        "workers?team_id": ("/v1/dashboard/workers", {"team_id": team_id}),
        "teams": ("/v1/dashboard/teams", {}),
        "timeliness": ("/v1/dashboard/timeliness", {}),
        "timeliness?team_id": ("/v1/dashboard/timeliness", {"team_id": team_id}),
        "timeliness?worker_id": ("/v1/dashboard/timeliness", {"worker_id": worker_id}),
        "timeliness?interval=week": ("/v1/dashboard/timeliness", {"interval": "week"}),
    }
    results: dict[str, Any] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for name, (path, params) in endpoints.items():
            results[name] = time_requests(client, path, params, requests)
    with httpx.Client(base_url=base, timeout=60) as browser:
        browser.post("/dashboard/sign-in", data={"credential": key}, headers={"Origin": base})
        started = time.perf_counter()
        first = browser.get("/dashboard")
        first_ms = (time.perf_counter() - started) * 1000
        first.raise_for_status()
        results["dashboard_html"] = {
            "first_render_ms": round(first_ms, 1),
            **time_requests(browser, "/dashboard", {}, max(10, requests // 3)),
            "bytes": len(first.content),
        }
        results["dashboard_html?team_id"] = time_requests(
            browser, "/dashboard", {"team_id": team_id}, max(10, requests // 3)
        )
        # A worker's and a team's page: the first render of each, then sequential renders.
        for name, path in (
            ("worker_html", f"/dashboard/workers/{worker_id}"),
            ("team_html", f"/dashboard/teams/{team_id}"),
        ):
            started = time.perf_counter()
            first = browser.get(path)
            first_ms = (time.perf_counter() - started) * 1000
            first.raise_for_status()
            results[name] = {
                "first_render_ms": round(first_ms, 1),
                **time_requests(browser, path, {}, max(10, requests // 3)),
                "bytes": len(first.content),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with fresh_database() as pg:
        env = caseclock_env(pg, CASECLOCK_EMBED_SECRET="bench-" + "s" * 40)
        key = admin_key(env)

        async def org_id() -> str:
            connection = await asyncpg.connect(pg)
            try:
                return str(await connection.fetchval("SELECT id FROM orgs"))
            finally:
                await connection.close()

        org = asyncio.run(org_id())
        data = asyncio.run(load(pg, org, args.cases, now))
        team_id, worker_id = "T-07", "W-0007"
        url = env["CASECLOCK_DATABASE_URL"]
        data["rollup_seconds"] = asyncio.run(count_completions(url, org))
        plans = asyncio.run(explain(url, org, team_id, worker_id, now))
        base_line = asyncio.run(yardstick(pg, org, args.requests))
        port = free_port()
        command = [str(BIN / "caseclock"), "serve", "--port", str(port)]
        with server(command, env, port) as (base, _pid):
            latency = measure(base, key, args.requests, team_id, worker_id)
    widget_p95 = [v["p95_ms"] for k, v in latency.items() if not k.startswith("dashboard")]
    report = {
        "scale": {**data, "workers": WORKERS, "teams": TEAMS},
        "latency": latency,
        "yardstick": {"open_work_index_only_count": base_line},
        "p95_ratio_to_yardstick": {
            name: round(v["p95_ms"] / base_line["p95_ms"], 2)
            for name, v in latency.items()
            if "p95_ms" in v
        },
        "targets": {
            "widget_p95_ms": TARGET_WIDGET_P95_MS,
            "widget_p95_met": max(widget_p95) < TARGET_WIDGET_P95_MS,
            "first_render_ms": TARGET_FIRST_RENDER_MS,
            "first_render_met": max(
                latency[page]["first_render_ms"]
                for page in ("dashboard_html", "worker_html", "team_html")
            )
            < TARGET_FIRST_RENDER_MS,
        },
        "explain": plans,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
