"""Long work run in the background: imports (Annex A, CIN census, SSDA903), syncs of the
Standard Safeguarding Dataset and rules activations.

A request queues a job row (store/jobs.py); a runner claims it and runs it a step at a time,
each step one committed transaction with the job's checkpoint, so people polling the job see
it move, readers wait at most one step for a lock, and a job whose runner died is resumed by
the next claim from its last committed step.

The service's scheduler runs a job in a process of its own (service/jobs/process.py), so
what it costs in CPU (reading the workbook, mapping and deriving, building the statements)
takes no interpreter time from the requests; the command line and the tests run it in a
thread (`run_in_thread`), with its own event loop and connections. On PostgreSQL an import's
or a sync's steps run two at a time, committed in order (`_Step.in_order`).
A job that wrote a lot ends by refreshing the planner's statistics (store/statistics.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.rules import Ruleset
from service.imports import cin_census, ssda903
from service.imports.annex_a import read_annex_a
from service.imports.mapping import expected_headings
from service.imports.report import OutcomeCounts
from service.imports.returns import ReturnError
from service.imports.ssd import SnapshotError, SsdConfig, map_snapshot
from service.imports.ssd import rules_not_evaluable as ssd_rules_not_evaluable
from service.imports.workbook import WorkbookError
from service.sources.ssd import read_snapshot
from service.store.alerts import enqueue_completed
from service.store.completions import Tally, add_to_rollup, rebuild_rollup
from service.store.db import SessionFactory, make_engine, make_session_factory, transaction
from service.store.faults import PASSING_FAULTS, connection_lost, fault_name
from service.store.imports import (
    SOURCES,
    CaseImport,
    ImportPlan,
    finish_import,
    import_chunk,
    plan_import,
    plan_return,
)
from service.store.ingest import open_cases_after, rederive_chunk
from service.store.jobs import (
    MAX_ATTEMPTS,
    Claim,
    ClaimLost,
    claim_next,
    fail_job,
    finish_job,
    job_payload,
    release_job,
    renew,
    save_progress,
)
from service.store.orgs import lock_ruleset
from service.store.sources import SYNC_KIND, get_ssd_source, keep_sync_report
from service.store.ssd_sync import (
    CaseChanges,
    StoredUnits,
    apply_chunk,
    changed_anything,
    finished_report,
    plan_sync,
    stored_units,
)
from service.store.statistics import analyze_grown

log = logging.getLogger("caseclock.jobs.background")
Clock = Callable[[], datetime]
# Open cases re-derived per step of a rules activation.
ACTIVATION_CHUNK = 200
# The cyclic collector's thresholds in a process that runs a job (`collect_less_often`): the
# youngest objects looked at every 50,000 allocations rather than 700, the older ones after
# 20 and 100 of those rather than 10 and 10.
JOB_COLLECTOR_THRESHOLDS = (50_000, 20, 100)


def collect_less_often() -> None:
    """Tell the cyclic collector to look less often, for the rest of a process that runs a
    job (the scheduler's job process, the command line's import or sync).

    A job holds hundreds of thousands of objects for its whole length (the file's rows, its
    events, the plan) and makes millions more, and at the default thresholds the collector
    walked the held ones again and again: a fifth of an import's CPU. Only such processes:
    their heaps are the job's, while a server's requests leave garbage to collect promptly.
    """
    gc.set_threshold(*JOB_COLLECTOR_THRESHOLDS)


# How long steps that store nothing may go without saving a checkpoint (`_Step.in_order`).
UNCHANGED_STEP_SECONDS = 0.5
# Steps of an import or a sync written at once on PostgreSQL (`_Step.in_order`). SQLite
# takes its one write lock when a step begins, so there a second step would only wait.
STEPS_IN_FLIGHT = 2
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a job has got, as a step commits it."""

    rows_done: int
    rows_total: int | None
    cases_done: int
    cases_total: int | None

    def after(self, rows: int, cases: int) -> Progress:
        """This progress once `rows` more rows and `cases` more cases are written."""
        return replace(self, rows_done=self.rows_done + rows, cases_done=self.cases_done + cases)


OnProgress = Callable[[Progress], None]


class Stopped(Exception):
    """The process is stopping: the job was handed back at the end of a step."""


class JobFailed(Exception):
    """The job cannot be done; `problem` (RFC 9457) says why, and is kept on the job."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem["detail"])
        self.problem = problem


# How a claimed job is run to its end (service/jobs/process.py runs it in a process of its
# own); False when it could not be started, and the rest waits for the next tick.
RunJob = Callable[[str, Claim, Clock, threading.Event], Awaitable[bool]]


async def run_next_jobs(
    database_url: str,
    factory: SessionFactory,
    clock: Clock,
    stop: threading.Event,
    run: RunJob | None = None,
) -> int:
    """Claim the oldest runnable job and run it to its end, with `run` or else in a thread
    of its own, then the next, until none is left or `stop` is set; how many were run."""
    ran = 0
    while not stop.is_set():
        async with transaction(factory) as session:
            claim = await claim_next(session, clock())
        if claim is None:
            break
        if run is None:
            await asyncio.to_thread(run_in_thread, database_url, claim, clock, stop)
        elif not await run(database_url, claim, clock, stop):
            break
        ran += 1
    return ran


def run_in_thread(
    database_url: str,
    claim: Claim,
    clock: Clock,
    stop: threading.Event,
    on_progress: OnProgress | None = None,
) -> None:
    """Run a claimed job on an event loop and connections of this thread's own."""

    async def run() -> None:
        engine = make_engine(database_url)
        try:
            await run_claimed(make_session_factory(engine), claim, clock, stop, on_progress)
        finally:
            await engine.dispose()

    asyncio.run(run())


@dataclass(slots=True)
class _Step:
    """What every step of a job needs: the claim it holds, the clock, and the stop signal."""

    factory: SessionFactory
    claim: Claim
    clock: Clock
    stop: threading.Event

    async def in_order(
        self,
        items: Iterable[T],
        write: Callable[[AsyncSession, T], Awaitable[bool]],
        seal: Callable[[AsyncSession, T], Awaitable[None]],
        checkpoint: Callable[[AsyncSession], Awaitable[None]],
        checkpointed: Callable[[], None],
    ) -> None:
        """Write each item in a transaction of its own, `STEPS_IN_FLIGHT` at once on
        PostgreSQL, committed in order: while one step waits for the database, the next
        computes its rows.

        `write` says whether it stored anything. Once the step before it has committed, a
        step runs `seal` (what must follow the steps before: the completions rollup, the
        counts so far), then renews the claim and saves its `checkpoint`, commits, and
        `checkpointed` runs; so a checkpoint never counts a step that did not commit, and a
        step that fails rolls back those after it. Steps that store nothing (a file imported
        before) save no checkpoint for up to `UNCHANGED_STEP_SECONDS`: they write nothing, so
        their commits cost nothing, and a resumed job only counts them again. Once the
        process is stopping no step starts, and the job is handed back after those under way.
        """
        bind = self.factory.kw.get("bind")
        depth = STEPS_IN_FLIGHT if bind is not None and bind.dialect.name == "postgresql" else 1
        in_flight: deque[asyncio.Task[None]] = deque()
        saved_at, unsaved = time.monotonic(), False

        async def one(item: T, before: asyncio.Task[None] | None) -> None:
            nonlocal saved_at, unsaved
            async with transaction(self.factory) as session:
                stored = await write(session, item)
                if before is not None:
                    await before
                await seal(session, item)
                unsaved = not (stored or time.monotonic() - saved_at > UNCHANGED_STEP_SECONDS)
                if not unsaved:
                    await renew(session, self.claim, self.clock())
                    await checkpoint(session)
            if not unsaved:
                saved_at = time.monotonic()
                checkpointed()

        try:
            for item in items:
                if len(in_flight) == depth:
                    await in_flight.popleft()
                if self.stop.is_set():
                    break
                in_flight.append(
                    asyncio.create_task(one(item, in_flight[-1] if in_flight else None))
                )
            while in_flight:
                await in_flight.popleft()
            if unsaved and not self.stop.is_set():
                async with self.transaction() as session:
                    await checkpoint(session)
                checkpointed()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        if self.stop.is_set():
            async with transaction(self.factory) as session:
                await release_job(session, self.claim)
            raise Stopped(self.claim.id)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A step's transaction: none once the process is stopping (the job is handed back
        instead), and each one renews the claim first, or stops if it is lost."""
        if self.stop.is_set():
            async with transaction(self.factory) as session:
                await release_job(session, self.claim)
            raise Stopped(self.claim.id)
        async with transaction(self.factory) as session:
            await renew(session, self.claim, self.clock())
            yield session


async def run_claimed(
    factory: SessionFactory,
    claim: Claim,
    clock: Clock,
    stop: threading.Event,
    on_progress: OnProgress | None = None,
) -> None:
    """Run a claimed job to done or failed. A lost connection leaves it to be resumed when
    its lease runs out; anything else fails it with a problem saying how far it got."""
    step = _Step(factory, claim, clock, stop)
    try:
        if claim.attempt > MAX_ATTEMPTS:
            raise JobFailed(_problem(f"stopped {MAX_ATTEMPTS} times before it could finish"))
        if claim.kind in SOURCES:
            await _import(step, on_progress or _quiet)
        elif claim.kind == SYNC_KIND:
            await _sync(step, on_progress or _quiet)
        else:
            await _activate(step, on_progress or _quiet)
    except Stopped:
        log.info("job %s handed back at shutdown", claim.id)
    except ClaimLost:
        log.warning("job %s: its lease ran out and another runner has it", claim.id)
    except JobFailed as exc:
        await _fail(step, exc.problem)
    except Exception as exc:
        if connection_lost(exc) or isinstance(exc, PASSING_FAULTS):
            log.warning(
                "job %s stopped on %s; resumed once its lease runs out", claim.id, fault_name(exc)
            )
            return
        log.exception("job %s failed", claim.id)
        await _fail(step, _problem("stopped on an internal error"))


def _quiet(_progress: Progress) -> None:
    """No one watching."""


def _problem(reason: str) -> dict[str, Any]:
    return {
        "type": "/problems/job-failed",
        "title": "The job did not finish",
        "status": 500,
        "detail": f"The job {reason}. What its finished steps wrote stays; running it again "
        "completes it (imports are idempotent).",
    }


async def _fail(step: _Step, problem: dict[str, Any]) -> None:
    async with transaction(step.factory) as session:
        if await fail_job(session, step.claim, step.clock(), problem):
            log.warning("job %s failed: %s", step.claim.id, problem["title"])


async def _import(step: _Step, on_progress: OnProgress) -> None:
    """Read and map the file, write it a chunk of cases at a time, then keep the report."""
    claim = step.claim
    extracted_on = date.fromisoformat(claim.params["extracted_on"])
    now = datetime.fromisoformat(claim.params["now"])
    async with step.transaction() as session:
        data = await job_payload(session, claim)
        ruleset = await lock_ruleset(session, claim.org_id)
    if data is None:
        raise JobFailed(_problem("had no file left to read"))
    plan = await asyncio.to_thread(_plan, claim, data, ruleset)
    checkpoint = claim.checkpoint or {}
    after: str | None = checkpoint.get("after")
    counts = OutcomeCounts.from_json(checkpoint["counts"]) if checkpoint else OutcomeCounts()
    done = [case for case in plan.cases if after is not None and case.case_id <= after]
    progress = Progress(
        plan.rows_without_case + sum(case.rows for case in done),
        plan.rows_total,
        len(done),
        len(plan.cases),
    )
    async with step.transaction() as session:
        await save_progress(
            session,
            claim,
            checkpoint=checkpoint,
            rows_done=progress.rows_done,
            cases_done=progress.cases_done,
            rows_total=progress.rows_total,
            cases_total=progress.cases_total,
        )
    on_progress(progress)
    # What each step written but not yet sealed came to, by its last case.
    pending: dict[str, tuple[OutcomeCounts, Tally]] = {}

    async def write(session: AsyncSession, chunk: list[CaseImport]) -> bool:
        step_counts, completions = pending[chunk[-1].case_id] = OutcomeCounts(), Tally()
        return await import_chunk(
            session,
            org_id=claim.org_id,
            ruleset=await lock_ruleset(session, claim.org_id),
            chunk=chunk,
            extracted_on=extracted_on,
            now=now,
            counts=step_counts,
            completions=completions,
        )

    async def seal(session: AsyncSession, chunk: list[CaseImport]) -> None:
        nonlocal progress, after
        step_counts, completions = pending.pop(chunk[-1].case_id)
        await add_to_rollup(session, completions)
        counts.absorb(step_counts)
        progress = progress.after(sum(case.rows for case in chunk), len(chunk))
        after = chunk[-1].case_id

    async def save(session: AsyncSession) -> None:
        await save_progress(
            session,
            claim,
            checkpoint={"after": after, "counts": counts.to_json()},
            rows_done=progress.rows_done,
            cases_done=progress.cases_done,
        )

    await step.in_order(plan.chunks_after(after), write, seal, save, lambda: on_progress(progress))
    async with step.transaction() as session:
        await finish_import(
            session,
            org_id=claim.org_id,
            import_id=claim.id,
            plan=plan,
            ruleset=await lock_ruleset(session, claim.org_id),
            counts=counts,
            now=now,
        )
        await analyze_grown(session)
        await finish_job(session, claim, step.clock())


def _plan(claim: Claim, data: bytes, ruleset: Ruleset) -> ImportPlan:
    """The file read and mapped (CPU only); a file that cannot be read fails the job."""
    source = SOURCES[claim.kind]
    # Dates after the day the import was posted are refused, as for events posted then.
    today = ruleset.calendar.local_date(datetime.fromisoformat(claim.params["now"]))
    try:
        if source == cin_census.SOURCE:
            census = cin_census.read_cin_census(data, today=today)
            mapped = cin_census.map_census(census, ruleset=ruleset)
            return plan_return(mapped, cin_census.rules_not_evaluable)
        if source == ssda903.SOURCE:
            returns = ssda903.read_packed(data, year=claim.params.get("year"), today=today)
            return plan_return(
                ssda903.map_returns(returns, ruleset=ruleset), ssda903.rules_not_evaluable
            )
        workbook = read_annex_a(data, extracted_on=date.fromisoformat(claim.params["extracted_on"]))
    except ReturnError as exc:
        raise JobFailed(
            {
                "type": "/problems/unreadable-return",
                "title": "The file cannot be imported",
                "status": 422,
                "detail": exc.detail,
            }
        ) from exc
    except WorkbookError as exc:
        raise JobFailed(
            {
                "type": "/problems/unreadable-workbook",
                "title": "The workbook cannot be imported",
                "status": 422,
                "detail": exc.detail,
                "expected_headings": expected_headings(),
            }
        ) from exc
    return plan_import(workbook, ruleset)


async def _sync(step: _Step, on_progress: OnProgress) -> None:
    """Read the organisation's SSD, compare it with what earlier syncs stored, and write the
    difference a chunk of cases at a time (store/ssd_sync.py).

    A resumed sync reads the SSD again: the cases its finished steps wrote now compare equal,
    so it writes the rest, and keeps the report of its first reading."""
    claim = step.claim
    now = datetime.fromisoformat(claim.params["now"])
    async with step.transaction() as session:
        source = await get_ssd_source(session, claim.org_id)
        ruleset = await lock_ruleset(session, claim.org_id)
    if source is None:
        raise JobFailed(_unsynced("the organisation has no SSD source configured"))

    async def held() -> StoredUnits:
        async with step.transaction() as session:
            return await stored_units(session, claim.org_id)

    # What the organisation holds is read while the SSD is: each database works on its
    # query while the other's rows are taken in.
    holding = asyncio.create_task(held())
    try:
        snapshot = await read_snapshot(source)
        stored = await holding
        mapped = map_snapshot(
            snapshot,
            config=SsdConfig(source.role_codes, source.worker_key),
            calendar=ruleset.calendar,
            today=ruleset.calendar.local_date(now),
        )
        plan = plan_sync(snapshot, mapped, stored)
    except SnapshotError as exc:
        raise JobFailed(_unsynced(exc.detail)) from exc
    finally:
        if not holding.done():
            holding.cancel()
            await asyncio.gather(holding, return_exceptions=True)
    del snapshot, mapped, stored
    checkpoint = claim.checkpoint or {}
    report: dict[str, Any] = checkpoint.get("report") or plan.report
    cases_done = int(checkpoint.get("cases_done", 0))
    changes_done = int(checkpoint.get("changes_done", 0))
    progress = Progress(
        changes_done, changes_done + plan.changes, cases_done, cases_done + len(plan.cases)
    )

    async def save(session: AsyncSession) -> None:
        await save_progress(
            session,
            claim,
            checkpoint={
                "report": report,
                "cases_done": progress.cases_done,
                "changes_done": progress.rows_done,
            },
            rows_done=progress.rows_done,
            cases_done=progress.cases_done,
            rows_total=progress.rows_total,
            cases_total=progress.cases_total,
        )

    async with step.transaction() as session:
        await save(session)
    on_progress(progress)

    pending: dict[str, Tally] = {}

    async def write(session: AsyncSession, chunk: list[CaseChanges]) -> bool:
        completions = pending[chunk[-1].case_id] = Tally()
        await apply_chunk(
            session,
            org_id=claim.org_id,
            ruleset=await lock_ruleset(session, claim.org_id),
            chunk=chunk,
            now=now,
            completions=completions,
        )
        return True

    async def seal(session: AsyncSession, chunk: list[CaseChanges]) -> None:
        nonlocal progress
        await add_to_rollup(session, pending.pop(chunk[-1].case_id))
        progress = progress.after(sum(case.size for case in chunk), len(chunk))

    await step.in_order(plan.chunks(), write, seal, save, lambda: on_progress(progress))
    async with step.transaction() as session:
        ruleset = await lock_ruleset(session, claim.org_id)
        kept = finished_report(
            report, sync_id=claim.id, taken_at=now, rules=ssd_rules_not_evaluable(ruleset)
        )
        if changed_anything(report):
            # A backfill: one summary alert, and none at all when nothing changed.
            await enqueue_completed(session, claim.org_id, "import.completed", now)
        await keep_sync_report(session, sync_id=claim.id, org_id=claim.org_id, report=kept, now=now)
        await analyze_grown(session)
        await finish_job(session, claim, step.clock())
    log.info(
        "ssd sync %s done: %d events added or voided in %d cases",
        claim.id,
        progress.rows_done,
        progress.cases_done,
    )


def _unsynced(reason: str) -> dict[str, Any]:
    return {
        "type": "/problems/ssd-unreadable",
        "title": "The SSD could not be synced",
        "status": 422,
        "detail": f"{reason}. Nothing more was written; the next sync starts afresh.",
    }


async def _activate(step: _Step, on_progress: OnProgress) -> None:
    """Re-derive every open case under the ruleset now active, a chunk of cases a step.

    The ruleset was made active when the job was queued; each step reads it again, so a later
    activation's cases are never derived under an older one. When the timezone changed, the
    completions rollup is counted again at the end instead of added to at each step.
    """
    claim = step.claim
    now = datetime.fromisoformat(claim.params["now"])
    rebuild = bool(claim.params["rebuild_rollup"])
    checkpoint = claim.checkpoint or {}
    after: str | None = checkpoint.get("after")
    cases_done = int(checkpoint.get("cases_done", 0))
    total: int | None = checkpoint.get("cases_total")
    while True:
        async with step.transaction() as session:
            ruleset = await lock_ruleset(session, claim.org_id)
            if total is None:
                total = len(await open_cases_after(session, claim.org_id, None, None))
            chunk = await open_cases_after(session, claim.org_id, after, ACTIVATION_CHUNK)
            if not chunk:
                if rebuild:
                    await rebuild_rollup(session, claim.org_id, ruleset.calendar)
                await analyze_grown(session)
                await finish_job(session, claim, step.clock())
                break
            completions = Tally()
            await rederive_chunk(session, claim.org_id, ruleset, chunk, now, completions)
            if not rebuild:
                await add_to_rollup(session, completions)
            after, cases_done = chunk[-1], cases_done + len(chunk)
            total = max(total, cases_done)
            await save_progress(
                session,
                claim,
                checkpoint={"after": after, "cases_done": cases_done, "cases_total": total},
                rows_done=0,
                cases_done=cases_done,
                cases_total=total,
            )
        on_progress(Progress(0, None, cases_done, total))
    log.info("rules activation %s done: %d open cases re-derived", claim.id, cases_done)
