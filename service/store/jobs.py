"""Background jobs as rows: queued by a request, claimed under a lease by one runner, resumed
from their last committed step when a runner dies.

Claims work as the alert outbox's do (store/outbox.py): rows taken with `FOR UPDATE SKIP
LOCKED`, a claim that moves `lease_until` ahead and counts the attempt, and every later write
made only while the attempt count is still the claim's own. A job's steps each commit with its
checkpoint, and each step begins by renewing the lease under that condition, so a runner
whose lease ran out and was taken over stops before it writes anything more.

Jobs of one organisation run one at a time, oldest first: an import queued behind a rules
activation is derived under the new rules, and neither sees the other half done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, exists, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.metrics import on_commit
from service.store.statistics import analyze_grown
from service.store.tables import jobs

JobKind = Literal[
    "annex-a-import", "cin-census-import", "ssda903-import", "rules-activation", "ssd-sync"
]
JobState = Literal["queued", "running", "done", "failed"]
UNFINISHED = ("queued", "running")
# A step renews the lease; the longest gap between renewals is reading a 20 MiB workbook.
LEASE = timedelta(seconds=60)
# Claims of one job before it is failed: a job that stops its runner every time (a process
# killed for memory, say) must not take every replica down in turn.
MAX_ATTEMPTS = 3

log = logging.getLogger("caseclock.jobs")
_listeners: set[Callable[[], None]] = set()


class ClaimLost(Exception):
    """The job's lease ran out and another runner claimed it: this one must stop."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A job a runner holds: what to do, and where it got to."""

    id: str
    org_id: str
    kind: JobKind
    attempt: int
    params: dict[str, Any]
    checkpoint: dict[str, Any] | None


def when_queued(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` whenever this process commits a new job; returns the unsubscribe."""
    _listeners.add(listener)
    return lambda: _listeners.discard(listener)


def _wake() -> None:
    for listener in list(_listeners):
        listener()


async def queue_job(
    session: AsyncSession,
    *,
    job_id: str,
    org_id: str,
    kind: JobKind,
    now: datetime,
    params: dict[str, Any],
    payload: bytes | None = None,
    claimed_until: datetime | None = None,
) -> Claim:
    """Add a job; runners in this process are woken once it commits.

    With `claimed_until` the caller runs the job itself (the command line) under the claim
    returned: it starts running, and a runner takes it over only if that lease runs out.
    """
    claimed = claimed_until is not None
    await session.execute(
        jobs.insert().values(
            id=job_id,
            org_id=org_id,
            kind=kind,
            state="running" if claimed else "queued",
            created_at=now,
            started_at=now if claimed else None,
            lease_until=claimed_until,
            attempts=1 if claimed else 0,
            rows_done=0,
            cases_done=0,
            params=params,
            payload=payload,
        )
    )
    if not claimed:
        on_commit(session, _wake)
    return Claim(job_id, org_id, kind, 1 if claimed else 0, params, None)


def _runnable(now: datetime) -> Any:
    """Queued, or running under a lease that ran out; and no older job of its organisation
    still to finish."""
    older = aliased(jobs)
    return and_(
        or_(jobs.c.state == "queued", and_(jobs.c.state == "running", jobs.c.lease_until < now)),
        ~exists().where(
            older.c.org_id == jobs.c.org_id,
            older.c.state.in_(UNFINISHED),
            tuple_(older.c.created_at, older.c.id) < tuple_(jobs.c.created_at, jobs.c.id),
        ),
    )


async def claim_next(session: AsyncSession, now: datetime) -> Claim | None:
    """Claim the oldest runnable job, if any."""
    found = (
        await session.execute(
            select(jobs.c.id)
            .where(_runnable(now))
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if found is None:
        return None
    row = (
        await session.execute(
            update(jobs)
            .where(jobs.c.id == found)
            .values(
                state="running",
                started_at=func.coalesce(jobs.c.started_at, now),
                lease_until=now + LEASE,
                attempts=jobs.c.attempts + 1,
            )
            .returning(
                jobs.c.id,
                jobs.c.org_id,
                jobs.c.kind,
                jobs.c.attempts,
                jobs.c.params,
                jobs.c.checkpoint,
            )
        )
    ).one()
    return Claim(row.id, row.org_id, row.kind, row.attempts, row.params, row.checkpoint)


def _held(claim: Claim) -> Any:
    return and_(jobs.c.id == claim.id, jobs.c.attempts == claim.attempt, jobs.c.state == "running")


async def renew(session: AsyncSession, claim: Claim, now: datetime) -> None:
    """Extend the lease in each step, before its checkpoint is saved: raises ClaimLost once
    the job is another's, and the step's transaction then rolls back.

    On PostgreSQL this also locks the job's row until the step commits, so a runner that
    finds the lease run out meanwhile skips the job rather than claiming it under a step
    committing; a step still writing when another runner claims the job cannot renew, and
    what it wrote is rolled back.
    """
    renewed = await session.execute(
        update(jobs).where(_held(claim)).values(lease_until=now + LEASE)
    )
    if not renewed.rowcount:  # type: ignore[attr-defined]
        raise ClaimLost(claim.id)


async def save_progress(
    session: AsyncSession,
    claim: Claim,
    *,
    checkpoint: dict[str, Any],
    rows_done: int,
    cases_done: int,
    rows_total: int | None = None,
    cases_total: int | None = None,
) -> None:
    """Record how far the job has got, in the step's own transaction."""
    values: dict[str, Any] = {
        "checkpoint": checkpoint,
        "rows_done": rows_done,
        "cases_done": cases_done,
    }
    if rows_total is not None:
        values["rows_total"] = rows_total
    if cases_total is not None:
        values["cases_total"] = cases_total
    await session.execute(update(jobs).where(_held(claim)).values(**values))


async def release_job(session: AsyncSession, claim: Claim) -> None:
    """Hand the job back, queued, at the end of a step: its process is stopping, and the next
    claim (here after a restart, or another replica's at once) resumes it."""
    await session.execute(update(jobs).where(_held(claim)).values(state="queued", lease_until=None))


async def finish_job(session: AsyncSession, claim: Claim, now: datetime) -> None:
    """Mark the job done, in its last step's transaction; the workbook it held is dropped.

    An import or a rules activation may have grown the write path's tables by far more than
    autovacuum has caught up with: those that grew by more than a tenth are analyzed here.
    """
    await session.execute(
        update(jobs)
        .where(_held(claim))
        .values(state="done", finished_at=now, lease_until=None, payload=None)
    )
    await analyze_grown(session)


async def fail_job(
    session: AsyncSession, claim: Claim, now: datetime, problem: dict[str, Any]
) -> bool:
    """Mark the job failed with an RFC 9457 problem saying why and how far it got; False when
    the claim was no longer this runner's (the job is then another's to finish or fail)."""
    failed = await session.execute(
        update(jobs)
        .where(_held(claim))
        .values(state="failed", finished_at=now, lease_until=None, payload=None, problem=problem)
    )
    return bool(failed.rowcount)  # type: ignore[attr-defined]


async def job_payload(session: AsyncSession, claim: Claim) -> bytes | None:
    """The bytes the job was queued with (the workbook), while it holds them."""
    payload: bytes | None = (
        await session.execute(select(jobs.c.payload).where(jobs.c.id == claim.id))
    ).scalar_one_or_none()
    return payload


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What a person polling a job sees."""

    id: str
    kind: JobKind
    state: JobState
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rows_done: int
    rows_total: int | None
    cases_done: int
    cases_total: int | None
    params: dict[str, Any]
    problem: dict[str, Any] | None


async def get_job(
    session: AsyncSession, org_id: str, job_id: str, kinds: tuple[JobKind, ...]
) -> JobStatus | None:
    """The job, if it is of one of `kinds`."""
    row = (
        await session.execute(
            select(
                jobs.c.id,
                jobs.c.kind,
                jobs.c.state,
                jobs.c.created_at,
                jobs.c.started_at,
                jobs.c.finished_at,
                jobs.c.rows_done,
                jobs.c.rows_total,
                jobs.c.cases_done,
                jobs.c.cases_total,
                jobs.c.params,
                jobs.c.problem,
            ).where(jobs.c.org_id == org_id, jobs.c.id == job_id, jobs.c.kind.in_(kinds))
        )
    ).one_or_none()
    return None if row is None else JobStatus(**row._mapping)
