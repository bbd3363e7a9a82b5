"""Sync a Standard Safeguarding Dataset of 10,000 children with six years of history (about
1,000,000 rows) into a fresh PostgreSQL caseclock database.

Builds the SSD in a schema of its own (the tables of tests/sources/ssd_schema.py, rows made
here and loaded with COPY): per child two referrals and their assessments, a section 47
enquiry and its conference, a protection plan of about fourteen months with a visit a week and
two reviews, five involvements (three case workers, two other roles); half the children also
looked after for about three years, with three episodes and placements, six reviews and a
visit every three weeks. Then, per run, on a new caseclock database:

- the first sync: the whole SSD becomes events, timed from the job's start to its end, with
  the part spent reading, mapping and comparing (before the first write) beside it;
- the same SSD synced again, unchanged: nothing to write.

The yardstick is the time a plain SELECT of the same columns of the same tables takes on the
same server (asyncpg, no mapping), measured in the same run.

Prints JSON: rows, events, and per run the first sync, the re-sync, the yardstick and their
ratios to it, with the load average; with several runs, the medians.

    .venv/bin/python -m bench.ssd_sync [--children 10000] [--runs 3]
        [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sources"))
from ssd_schema import SsdDatabase

from service.imports.ssd import TABLES_BY_NAME
from service.jobs.background import Progress, run_in_thread
from service.store.db import make_engine, make_session_factory, transaction
from service.store.jobs import LEASE
from service.store.migrations import upgrade_to_head
from service.store.orgs import create_org
from service.store.sources import SsdSource, queue_sync, set_ssd_source

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
YEARS = 6


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)  # noqa: DTZ001 (SSD timestamps are naive)


def build_rows(children: int, today: date, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows, in the column order of `COLUMNS`."""
    rng = random.Random(seed)
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    start = today - timedelta(days=365 * YEARS)
    rows["ssd_department"] = [(f"T{t}", f"Team {t}") for t in range(40)]
    rows["ssd_professionals"] = [
        (f"P{p}", f"S{p}", f"Worker {p}", f"SW{p:06d}") for p in range(800)
    ]
    for c in range(children):
        child = f"C{c:06d}"

        def day_after(first: date, days: int) -> date:
            return min(first + timedelta(days=days), today)

        first_referral = start + timedelta(days=rng.randrange(0, 365 * 2))
        second_referral = first_referral + timedelta(days=rng.randrange(500, 900))
        for n, referred in enumerate((first_referral, second_referral)):
            referral = f"R{c}-{n}"
            closed = day_after(referred, rng.randrange(200, 400)) if n == 0 else None
            rows["ssd_cin_episodes"].append(
                (referral, child, _at(referred), "N", _at(closed) if closed else None)
            )
            rows["ssd_cin_assessments"].append(
                (
                    f"A{c}-{n}",
                    child,
                    referral,
                    _at(day_after(referred, 2)),
                    _at(day_after(referred, rng.randrange(20, 70))),
                )
            )
        strategy = day_after(second_referral, 10)
        rows["ssd_s47_enquiry"].append(
            (f"S{c}", f"R{c}-1", child, _at(strategy), _at(day_after(strategy, 12)), "N")
        )
        plan_start = day_after(strategy, rng.randrange(14, 24))
        rows["ssd_initial_cp_conference"].append((f"IC{c}", child, f"R{c}-1", _at(plan_start), "Y"))
        plan_end = day_after(plan_start, 420)
        rows["ssd_cp_plans"].append((f"PL{c}", child, f"R{c}-1", _at(plan_start), _at(plan_end)))
        for v in range(60):
            visited = plan_start + timedelta(days=7 * v + 3)
            if visited > plan_end:
                break
            rows["ssd_cp_visits"].append(
                (f"V{c}-{v}", child, f"PL{c}", _at(visited), "N" if v % 17 == 5 else "Y", "Y")
            )
        for r, after in enumerate((80, 250)):
            rows["ssd_cp_reviews"].append(
                (f"RV{c}-{r}", child, f"PL{c}", _at(day_after(plan_start, after)))
            )
        for i in range(5):
            professional = f"P{rng.randrange(800)}"
            rows["ssd_involvements"].append(
                (
                    f"I{c}-{i}",
                    professional,
                    "CW" if i < 3 else rng.choice(("IRO", "16PLUS")),
                    f"T{rng.randrange(40)}",
                    child,
                    f"R{c}-{min(i, 1)}",
                    _at(day_after(first_referral, 150 * i)),
                )
            )
        if c % 2:
            continue
        care = day_after(first_referral, rng.randrange(30, 120))
        period = f"CLA{c}"
        for e in range(3):
            began = day_after(care, 365 * e)
            ended = day_after(began, 365)
            last = e == 2
            rows["ssd_cla_episodes"].append(
                (
                    f"E{c}-{e}",
                    child,
                    period,
                    _at(began),
                    _at(ended) if last and ended < today else None if last else _at(ended),
                    "E11" if last else "X1",
                    _at(care),
                )
            )
            rows["ssd_cla_placement"].append((f"PC{c}-{e}", period, child, _at(began)))
        for r in range(6):
            rows["ssd_cla_reviews"].append(
                (f"CR{c}-{r}", period, _at(day_after(care, 19 + 180 * r)), "N")
            )
        for v in range(40):
            visited = care + timedelta(days=21 * v + 5)
            if visited > today:
                break
            rows["ssd_cla_visits"].append((f"CV{c}-{v}", period, child, _at(visited), "Y", "N"))
    return rows


COLUMNS: dict[str, tuple[str, ...]] = {
    "ssd_department": ("dept_team_id", "dept_team_name"),
    "ssd_professionals": (
        "prof_professional_id",
        "prof_staff_id",
        "prof_professional_name",
        "prof_social_worker_registration_no",
    ),
    "ssd_cin_episodes": (
        "cine_referral_id",
        "cine_person_id",
        "cine_referral_date",
        "cine_referral_nfa",
        "cine_close_date",
    ),
    "ssd_cin_assessments": (
        "cina_assessment_id",
        "cina_person_id",
        "cina_referral_id",
        "cina_assessment_start_date",
        "cina_assessment_auth_date",
    ),
    "ssd_s47_enquiry": (
        "s47e_s47_enquiry_id",
        "s47e_referral_id",
        "s47e_person_id",
        "s47e_s47_start_date",
        "s47e_s47_end_date",
        "s47e_s47_nfa",
    ),
    "ssd_initial_cp_conference": (
        "icpc_icpc_id",
        "icpc_person_id",
        "icpc_referral_id",
        "icpc_icpc_date",
        "icpc_icpc_outcome_cp_flag",
    ),
    "ssd_cp_plans": (
        "cppl_cp_plan_id",
        "cppl_person_id",
        "cppl_referral_id",
        "cppl_cp_plan_start_date",
        "cppl_cp_plan_end_date",
    ),
    "ssd_cp_visits": (
        "cppv_cp_visit_id",
        "cppv_person_id",
        "cppv_cp_plan_id",
        "cppv_cp_visit_date",
        "cppv_cp_visit_seen",
        "cppv_cp_visit_seen_alone",
    ),
    "ssd_cp_reviews": (
        "cppr_cp_review_id",
        "cppr_person_id",
        "cppr_cp_plan_id",
        "cppr_cp_review_date",
    ),
    "ssd_involvements": (
        "invo_involvements_id",
        "invo_professional_id",
        "invo_professional_role_id",
        "invo_professional_team",
        "invo_person_id",
        "invo_referral_id",
        "invo_involvement_start_date",
    ),
    "ssd_cla_episodes": (
        "clae_cla_episode_id",
        "clae_person_id",
        "clae_cla_id",
        "clae_cla_episode_start_date",
        "clae_cla_episode_ceased_date",
        "clae_cla_episode_ceased_reason",
        "clae_entered_care_date",
    ),
    "ssd_cla_placement": (
        "clap_cla_placement_id",
        "clap_cla_id",
        "clap_person_id",
        "clap_cla_placement_start_date",
    ),
    "ssd_cla_reviews": (
        "clar_cla_review_id",
        "clar_cla_id",
        "clar_cla_review_date",
        "clar_cla_review_cancelled",
    ),
    "ssd_cla_visits": (
        "clav_cla_visit_id",
        "clav_cla_id",
        "clav_person_id",
        "clav_cla_visit_date",
        "clav_cla_visit_seen",
        "clav_cla_visit_seen_alone",
    ),
}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def load(ssd: SsdDatabase, rows: dict[str, list[tuple[Any, ...]]]) -> int:
    """COPY every table's rows in; how many rows."""
    connection = await asyncpg.connect(_dsn(ssd.url))
    try:
        for name, records in rows.items():
            await connection.copy_records_to_table(
                name, records=records, columns=COLUMNS[name], schema_name=ssd.schema
            )
            await connection.execute(f'ANALYZE "{ssd.schema}".{name}')
    finally:
        await connection.close()
    return sum(len(records) for records in rows.values())


async def yardstick(ssd: SsdDatabase) -> float:
    """Seconds to SELECT the columns caseclock reads of every table, plainly."""
    connection = await asyncpg.connect(_dsn(ssd.url))
    try:
        started = time.perf_counter()
        for name, present in COLUMNS.items():
            columns = ", ".join(c for c in TABLES_BY_NAME[name].columns if c in present)
            await connection.fetch(f'SELECT {columns} FROM "{ssd.schema}".{name}')  # noqa: S608
        return time.perf_counter() - started
    finally:
        await connection.close()


async def _administer(server: str, statement: str) -> None:
    connection = await asyncpg.connect(_dsn(server))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _sync(database_url: str, org_id: str, now: datetime) -> tuple[float, float, Progress | None]:
    """Queue a sync and run it here: total seconds, seconds before the first write, and its
    last progress."""

    async def queue() -> Any:
        engine = make_engine(database_url)
        try:
            async with transaction(make_session_factory(engine)) as session:
                claim, _ = await queue_sync(
                    session, org_id=org_id, now=now, claimed_until=now + LEASE
                )
            return claim
        finally:
            await engine.dispose()

    claim = asyncio.run(queue())
    started = time.perf_counter()
    first: list[float] = []
    last: list[Progress] = []

    def progress(reached: Progress) -> None:
        if not first:
            first.append(time.perf_counter() - started)
        last.append(reached)

    run_in_thread(database_url, claim, lambda: datetime.now(UTC), threading.Event(), progress)
    return time.perf_counter() - started, first[0] if first else 0.0, last[-1] if last else None


def one_run(server: str, ssd: SsdDatabase, now: datetime) -> dict[str, Any]:
    name = f"caseclock_ssd_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_administer(server, f'CREATE DATABASE "{name}"'))
    database_url = make_url(server).set(drivername="postgresql+asyncpg", database=name)
    url = database_url.render_as_string(hide_password=False)
    try:

        async def prepare() -> str:
            engine = make_engine(url)
            try:
                await upgrade_to_head(engine)
                async with transaction(make_session_factory(engine)) as session:
                    org = await create_org(
                        session, name="bench", ruleset_id="england-children", now=now
                    )
                    await set_ssd_source(
                        session,
                        SsdSource(org.id, ssd.source_url, ssd.schema, None, schedule=None),
                        now,
                    )
                return org.id
            finally:
                await engine.dispose()

        org_id = asyncio.run(prepare())
        stick = asyncio.run(yardstick(ssd))
        first, first_planned, first_progress = _sync(url, org_id, now)
        again, again_planned, again_progress = _sync(url, org_id, now)
        return {
            "yardstick_select_seconds": round(stick, 2),
            "first_sync_seconds": round(first, 1),
            "first_sync_read_and_compare_seconds": round(first_planned, 1),
            "first_sync_events": first_progress.rows_done if first_progress else None,
            "first_sync_ratio": round(first / stick, 1),
            "resync_seconds": round(again, 1),
            "resync_read_and_compare_seconds": round(again_planned, 1),
            "resync_changes": again_progress.rows_done if again_progress else None,
            "resync_ratio": round(again / stick, 1),
            "load_average": round(os.getloadavg()[0], 1),
        }
    finally:
        asyncio.run(_administer(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--server", default=os.environ.get("CASECLOCK_BENCH_SERVER", SERVER))
    args = parser.parse_args()
    now = datetime.now(UTC)
    server = (
        make_url(args.server)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )
    ssd = asyncio.run(SsdDatabase.create(server))
    try:
        rows = build_rows(args.children, now.date() - timedelta(days=1))
        loaded = asyncio.run(load(ssd, rows))
        del rows
        runs = [one_run(server, ssd, now) for _ in range(args.runs)]
    finally:
        asyncio.run(ssd.drop())
    result: dict[str, Any] = {"children": args.children, "ssd_rows": loaded, "runs": runs}
    if len(runs) > 1:
        result["median"] = {
            key: statistics.median(run[key] for run in runs)
            for key in runs[0]
            if isinstance(runs[0][key], int | float)
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
