"""Every statement that reads or writes one case's rows finds them through an index that names
the case (or the row), whatever PostgreSQL's statistics say (docs/operations.md, Statistics).

Each test runs the store's own statement as the service runs it (the same statement objects,
on a connection made by the service's `make_engine`), records what it sent, and asks PostgreSQL
for the plan of exactly that with the same values (EXPLAIN, FORMAT JSON). It does so in three
databases of their own, each holding an organisation of 1,200 cases beside a small one: never
analyzed; analyzed; and analyzed at 150 cases, before the rest arrived in bulk. No plan may
scan a table sequentially or read an organisation through an index by the organisation alone.
(1,200 cases: below a few hundred, PostgreSQL without statistics reckons an organisation has
about one row of a table, and then any index that leads with it costs the same: the window
docs/operations.md describes under Statistics.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scratch_database import empty_database, on_postgresql
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.events import Event
from service.store import ingest
from service.store.cases import read_case
from service.store.db import SessionFactory, make_engine, make_session_factory, transaction
from service.store.events import find_events, get_event
from service.store.ingest import ingest_events, load_case_events, mark_void
from service.store.migrations import upgrade_to_head
from service.store.obligations import find_obligations
from service.store.orgs import create_org, lock_ruleset

pytestmark = pytest.mark.skipif(not on_postgresql(), reason="PostgreSQL's plans")

CASES = 1200
ANALYZED_AT = 150
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
STATISTICS = ("never analyzed", "analyzed", "stale after a bulk import")


def history(case_id: str, start: datetime, *, protected: bool) -> list[Event]:
    """A referral that became an assessment, and then either a child protection plan (whose
    visits are scheduled, so its obligations have risk periods) or a visit."""
    steps = [
        ("referral_received", 0, {}),
        ("referral_decision_made", 1, {"outcome": "assessment"}),
        ("contact_made", 2, {}),
        ("assessment_started", 3, {}),
        ("child_seen", 5, {}),
    ]
    if protected:
        steps += [
            ("strategy_discussion_held", 8, {}),
            ("section47_started", 8, {}),
            ("icpc_held", 25, {"plan": True}),
            ("child_protection_plan_started", 25, {}),
            ("core_group_held", 35, {}),
        ]
    else:
        steps += [("assessment_completed", 30, {}), ("child_visited", 40, {})]
    return [
        Event(f"{case_id}-{n}", kind, case_id, start + timedelta(days=day), "W-1", "T-1", data)
        for n, (kind, day, data) in enumerate(steps)
    ]


async def write_cases(factory: SessionFactory, org_id: str, first: int, last: int) -> None:
    """Cases `first` to `last` (excluded), written by the write path a few at a time."""
    start = NOW - timedelta(days=200)
    for low in range(first, last, 50):
        batch = [
            e
            for n in range(low, min(low + 50, last))
            for e in history(f"C{n:05d}", start + timedelta(hours=n), protected=n % 2 == 1)
        ]
        async with transaction(factory) as session:
            await ingest_events(session, org_id, await lock_ruleset(session, org_id), batch, NOW)


@dataclass(frozen=True)
class Filled:
    factory: SessionFactory
    org_id: str


async def fill(url: str, statistics: str) -> AsyncIterator[Filled]:
    engine = make_engine(url)
    await upgrade_to_head(engine)
    factory = make_session_factory(engine)
    async with transaction(factory) as session:
        org = await create_org(session, name="large", ruleset_id="england-children", now=NOW)
        small = await create_org(session, name="small", ruleset_id="england-children", now=NOW)
    await write_cases(factory, small.id, 0, 5)
    first = ANALYZED_AT if statistics == "stale after a bulk import" else 0
    if first:
        await write_cases(factory, org.id, 0, first)
        await analyze(factory)
    await write_cases(factory, org.id, first, CASES)
    if statistics == "analyzed":
        await analyze(factory)
    try:
        yield Filled(factory, org.id)
    finally:
        await engine.dispose()


async def analyze(factory: SessionFactory) -> None:
    async with transaction(factory) as session:
        await session.execute(text("ANALYZE"))


@pytest.fixture(scope="session", params=STATISTICS)
def database_url_for(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    with empty_database(tmp_path_factory.mktemp("plans")) as url:
        yield url, request.param


@pytest.fixture(scope="session")
async def filled(database_url_for: tuple[str, str]) -> AsyncIterator[Filled]:
    async for found in fill(*database_url_for):
        yield found


Run = Callable[[AsyncSession], Awaitable[Any]]


async def plans_of(filled: Filled, run: Run) -> list[tuple[str, dict[str, Any]]]:
    """Each statement `run` sends, and the plan PostgreSQL makes for it with its values.

    `run` works in a savepoint that is rolled back, so the data stay as filled.
    """
    sent: list[tuple[str, Any]] = []

    def note(_c: Any, _cursor: Any, statement: str, values: Any, _ctx: Any, many: bool) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
            sent.append((statement, values[0] if many else values))

    async with filled.factory() as session, session.begin():
        savepoint = await session.begin_nested()
        sync_engine = session.get_bind()
        event.listen(sync_engine, "before_cursor_execute", note)
        try:
            await run(session)
        finally:
            event.remove(sync_engine, "before_cursor_execute", note)
        await savepoint.rollback()
        connection = await (await session.connection()).get_raw_connection()
        driver = connection.driver_connection
        assert driver is not None
        plans = []
        for statement, values in sent:
            # The service's connections decode JSON already.
            found = await driver.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *values)
            plans.append((statement, found[0]["Plan"]))
        return plans


def org_wide_reads(plan: dict[str, Any]) -> list[str]:
    """The plan's sequential scans, and its index scans that search by organisation alone."""
    found = []
    node_type = plan["Node Type"]
    # `orgs` holds a row an organisation: a scan of it reads a handful of rows.
    if node_type == "Seq Scan" and plan["Relation Name"] != "orgs":
        found.append(f"Seq Scan on {plan['Relation Name']}")
    if node_type in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        condition = plan.get("Index Cond", "")
        columns = {part.split(")")[0] for part in condition.split("((")[1:]}
        if not columns - {"org_id"}:
            found.append(f"{node_type} using {plan['Index Name']}: {condition or 'no condition'}")
    for child in plan.get("Plans", []):
        found.extend(org_wide_reads(child))
    return found


async def assert_found_by_case(filled: Filled, run: Run, statements: int | None = 1) -> None:
    plans = await plans_of(filled, run)
    if statements is not None:
        assert len(plans) == statements, [s for s, _ in plans]
    for statement, plan in plans:
        assert org_wide_reads(plan) == [], statement


CASE = "C00007"
OTHERS = [f"C{n:05d}" for n in (3, 300, 600, 900, 1150)]


async def test_a_cases_log_is_read_by_its_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled, lambda s: load_case_events(s, filled.org_id, [CASE, *OTHERS])
    )


async def test_the_stored_obligations_of_cases_are_read_by_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled,
        lambda s: s.execute(
            ingest._STORED_OBLIGATIONS(s), {"org_id": filled.org_id, "case_ids": [CASE, *OTHERS]}
        ),
    )


async def test_stored_events_are_read_back_by_id(filled: Filled) -> None:
    await assert_found_by_case(
        filled,
        lambda s: s.execute(
            ingest._STORED_HASHES(s),
            {"org_id": filled.org_id, "ids": [f"{CASE}-0", f"{OTHERS[2]}-3"]},
        ),
    )


async def obligation_ids(filled: Filled) -> list[str]:
    async with filled.factory() as session:
        stored = await session.execute(
            ingest._STORED_OBLIGATIONS(session), {"org_id": filled.org_id, "case_ids": [CASE]}
        )
        return [row.id for row in stored]


async def test_obligations_are_deleted_by_id(filled: Filled) -> None:
    ids = await obligation_ids(filled)
    await assert_found_by_case(
        filled, lambda s: ingest._DELETE_OBLIGATIONS.execute(s, filled.org_id, ids)
    )


async def test_risk_periods_are_deleted_by_obligation(filled: Filled) -> None:
    ids = await obligation_ids(filled)
    await assert_found_by_case(
        filled, lambda s: ingest._DELETE_RISK_PERIODS.execute(s, filled.org_id, ids)
    )


async def test_a_cases_allocation_is_written_by_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled,
        lambda s: s.execute(
            ingest._UPDATE_CASE,
            [
                {
                    "b_org": filled.org_id,
                    "b_case": CASE,
                    "worker_id": "W-2",
                    "team_id": "T-2",
                    "status": "open",
                    "periods_digest": None,
                }
            ],
        ),
    )


async def test_every_statement_of_an_event_write_finds_rows_by_case(filled: Filled) -> None:
    """A new event on a case with a history, the same event again, and a conflicting one."""
    visit = Event(f"{CASE}-late", "child_visited", CASE, NOW - timedelta(days=1), "W-2", "T-1", {})
    clash = Event(f"{CASE}-0", "child_visited", CASE, NOW - timedelta(days=1), "W-2", "T-1", {})

    async def write(session: AsyncSession) -> None:
        ruleset = await lock_ruleset(session, filled.org_id)
        await ingest_events(session, filled.org_id, ruleset, [visit, visit, clash], NOW)

    await assert_found_by_case(filled, write, statements=None)


async def test_every_statement_of_a_void_finds_rows_by_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled,
        lambda s: mark_void(s, filled.org_id, f"{CASE}-4", "entered on the wrong case", NOW),
        statements=None,
    )


async def test_a_case_is_read_whole_by_its_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled, lambda s: read_case(s, filled.org_id, CASE, NOW), statements=3
    )


async def test_an_event_is_read_by_its_id(filled: Filled) -> None:
    await assert_found_by_case(filled, lambda s: get_event(s, filled.org_id, f"{CASE}-2"))


async def test_a_cases_events_are_listed_by_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled, lambda s: find_events(s, filled.org_id, case_id=CASE, limit=50, after=None)
    )


async def test_a_cases_obligations_are_listed_by_case(filled: Filled) -> None:
    await assert_found_by_case(
        filled,
        lambda s: find_obligations(
            s,
            filled.org_id,
            at=NOW,
            statuses=None,
            rule_id=None,
            case_id=CASE,
            team_id=None,
            worker_id=None,
            due_before=None,
            limit=50,
            after=None,
        ),
    )


def test_an_organisation_wide_read_is_recognised() -> None:
    """The check itself: a read by organisation alone fails it, a read by case passes."""
    by_org = {
        "Node Type": "Index Scan",
        "Index Name": "ix_obligations_org_id_due_at_id",
        "Index Cond": "((org_id)::text = 'o'::text)",
        "Filter": "((case_id)::text = 'c'::text)",
    }
    by_case = {
        **by_org,
        "Index Cond": "(((org_id)::text = 'o'::text) AND ((case_id)::text = 'c'::text))",
    }
    assert org_wide_reads({"Node Type": "Nested Loop", "Plans": [by_org]}) != []
    assert org_wide_reads({"Node Type": "Seq Scan", "Relation Name": "events"}) != []
    assert org_wide_reads(by_case) == []


async def test_the_services_connections_plan_every_statement_for_its_values(
    filled: Filled,
) -> None:
    """A plan kept from when the tables were nearly empty would outlive the tables' growth."""
    async with filled.factory() as session:
        mode = await session.execute(text("SHOW plan_cache_mode"))
        assert mode.scalar_one() == "force_custom_plan"


# A later page of a list starts its index range at the cursor (store/keyset.py), so paging costs
# the same per page however deep it goes: a CSV export walks the obligations list that way.

CURSOR = (datetime(2026, 6, 1, tzinfo=UTC), "ob_0")


def index_conditions(plan: dict[str, Any]) -> list[str]:
    found = [plan["Index Cond"]] if "Index Cond" in plan else []
    for child in plan.get("Plans", []):
        found += index_conditions(child)
    return found


async def test_a_later_page_of_obligations_starts_its_index_range_at_the_cursor(
    filled: Filled,
) -> None:
    [(statement, plan)] = await plans_of(
        filled,
        lambda s: find_obligations(
            s,
            filled.org_id,
            at=NOW,
            statuses=None,
            rule_id=None,
            case_id=None,
            team_id=None,
            worker_id=None,
            due_before=None,
            limit=1000,
            after=CURSOR,
        ),
    )
    assert any("due_at >=" in c for c in index_conditions(plan)), (statement, plan)


async def test_a_later_page_of_a_cases_events_starts_its_index_range_at_the_cursor(
    filled: Filled,
) -> None:
    [(statement, plan)] = await plans_of(
        filled, lambda s: find_events(s, filled.org_id, case_id=CASE, limit=50, after=CURSOR)
    )
    assert any("occurred_at >=" in c for c in index_conditions(plan)), (statement, plan)
