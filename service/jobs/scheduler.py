"""APScheduler wiring: when the sweep, delivery and background jobs run, nothing about what
they do.

Every replica may run both jobs; correctness comes from the database (unique alert keys,
`SKIP LOCKED` claims, leases), not from there being one scheduler. Per process, each job
runs at most once at a time, and missed ticks are coalesced into one run.

Job runs are tasks of their own that the APScheduler job only awaits (shielded), so that
at shutdown the scheduler stops starting runs while the ones under way finish what they
hold, within a grace period, instead of being cancelled mid-transaction.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from fastapi import FastAPI

from service.jobs.background import run_next_jobs
from service.jobs.deliver import (
    HELD_ROUNDS,
    RUN_BUDGET_SECONDS,
    DeliveryConfig,
    DeliveryRun,
    WebhookSender,
    deliver_due,
)
from service.jobs.digests import raise_due_digests
from service.jobs.process import run_in_process
from service.jobs.retention import RUN_BUDGET_SECONDS as PRUNE_BUDGET_SECONDS
from service.jobs.retention import RetentionRun, prune_history
from service.jobs.source_syncs import queue_scheduled_syncs
from service.jobs.sweep import SweepResult, sweep
from service.settings import Settings
from service.store.db import SessionFactory
from service.store.jobs import when_queued

log = logging.getLogger("caseclock.jobs")
T = TypeVar("T")
Clock = Callable[[], datetime]

SWEEP_JOB = "caseclock-sweep"
DELIVER_JOB = "caseclock-deliver"
PRUNE_JOB = "caseclock-retention"
BACKGROUND_JOB = "caseclock-background"
DIGEST_JOB = "caseclock-digests"
SOURCE_SYNC_JOB = "caseclock-source-syncs"
DIGEST_INTERVAL_SECONDS = 60.0  # digests are due at a minute of the day
SOURCE_SYNC_INTERVAL_SECONDS = 60.0  # syncs are due at a minute of the day
# Queued work wakes this process's runner at once; the interval finds work queued by other
# replicas and jobs whose runner died.
BACKGROUND_INTERVAL_SECONDS = 5.0
BACKGROUND_MAX_RUN_SECONDS = 3600.0
PRUNE_INTERVAL_SECONDS = 3600.0
SWEEP_MAX_RUN_SECONDS = 600.0
STALL_GRACE_SECONDS = 30.0
MAX_EXTRA_PASSES = 10


class _QuietOverlaps(logging.Filter):
    """A delivery run may outlast its interval by design; the skipped tick is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


# APScheduler's own news (jobs added, started, shut down) repeats ours: warnings only.
_SCHEDULER_LOG = logging.getLogger("caseclock.scheduler")
_SCHEDULER_LOG.setLevel(logging.WARNING)
_SCHEDULER_LOG.addFilter(_QuietOverlaps())


@dataclass(slots=True)
class _Beat:
    """When a job last started and whether it is running, for readiness."""

    interval: float
    max_run: float
    started: float
    running: bool = False
    again: bool = False  # woken while running: go round again at once


class Jobs:
    """The scheduler of one process, the HTTP client its deliveries share, and their state."""

    def __init__(self, *, settings: Settings, factory: SessionFactory, clock: Clock) -> None:
        self.settings = settings
        self.factory = factory
        self.clock = clock
        self.config = DeliveryConfig.from_settings(settings)
        self.sender: WebhookSender | None = None
        self.stopping = asyncio.Event()
        # Background jobs run in processes of their own (jobs/process.py), which are told
        # when this is set and hand their job back at the end of the step under way.
        self.stop_steps = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self.runs: set[asyncio.Task[Any]] = set()
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            logger=_SCHEDULER_LOG,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        started = time.monotonic()
        self.beats = {
            SWEEP_JOB: _Beat(settings.sweep_interval_seconds, SWEEP_MAX_RUN_SECONDS, started),
            DELIVER_JOB: _Beat(
                settings.delivery_interval_seconds,
                # The budget, then the claims in hand, sent a round at a time.
                RUN_BUDGET_SECONDS + (HELD_ROUNDS + 1) * self.config.timeout_seconds,
                started,
            ),
            PRUNE_JOB: _Beat(PRUNE_INTERVAL_SECONDS, PRUNE_BUDGET_SECONDS + 60, started),
            BACKGROUND_JOB: _Beat(BACKGROUND_INTERVAL_SECONDS, BACKGROUND_MAX_RUN_SECONDS, started),
            DIGEST_JOB: _Beat(DIGEST_INTERVAL_SECONDS, SWEEP_MAX_RUN_SECONDS, started),
            SOURCE_SYNC_JOB: _Beat(SOURCE_SYNC_INTERVAL_SECONDS, SWEEP_MAX_RUN_SECONDS, started),
        }

    async def start(self) -> None:
        self.sender = WebhookSender(
            timeout_seconds=self.config.timeout_seconds,
            allow_private=self.config.allow_private,
            concurrency=self.config.concurrency,
        )
        first = datetime.now(UTC)
        runs = {
            SWEEP_JOB: (self.run_sweep, "alert sweep"),
            DELIVER_JOB: (self.run_delivery, "webhook delivery"),
            PRUNE_JOB: (self.run_retention, "delivery log retention"),
            BACKGROUND_JOB: (self.run_background, "imports and rules activations"),
            DIGEST_JOB: (self.run_digests, "digests"),
            SOURCE_SYNC_JOB: (self.run_source_syncs, "scheduled SSD syncs"),
        }
        for job_id, (run, name) in runs.items():
            self.scheduler.add_job(
                run,
                "interval",
                seconds=self.beats[job_id].interval,
                id=job_id,
                name=name,
                next_run_time=first,
                replace_existing=True,
            )
        self._unsubscribe = when_queued(self.wake_background)
        self.scheduler.start()
        log.info(
            "scheduler started: sweep every %gs, delivery every %gs",
            self.settings.sweep_interval_seconds,
            self.settings.delivery_interval_seconds,
        )

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Start no more runs, let those under way finish (within the grace), close the client."""
        self.stopping.set()
        self.stop_steps.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        grace = grace_seconds if grace_seconds is not None else self.config.timeout_seconds + 5
        if self.runs:
            _, late = await asyncio.wait(set(self.runs), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning(
                    "%d job runs cancelled at shutdown; their leases will expire", len(late)
                )
        if self.sender is not None:
            await self.sender.aclose()
        log.info("scheduler stopped")

    async def run_sweep(self) -> SweepResult | None:
        return await self._run(
            SWEEP_JOB,
            lambda: sweep(
                self.factory, now=self.clock(), on_enqueued=lambda _: self.wake_delivery()
            ),
        )

    async def run_delivery(self) -> DeliveryRun | None:
        sender = self.sender
        if sender is None:
            return None
        return await self._run(
            DELIVER_JOB,
            lambda: deliver_due(
                self.factory, sender, config=self.config, clock=self.clock, stop=self.stopping
            ),
        )

    async def run_retention(self) -> RetentionRun | None:
        return await self._run(
            PRUNE_JOB,
            lambda: prune_history(
                self.factory,
                now=self.clock(),
                keep=timedelta(days=self.settings.retention_days),
            ),
        )

    async def run_background(self) -> int | None:
        return await self._run(
            BACKGROUND_JOB,
            lambda: run_next_jobs(
                self.settings.database_url,
                self.factory,
                self.clock,
                self.stop_steps,
                partial(run_in_process, log_format=self.settings.log_format),
            ),
        )

    async def run_digests(self) -> int | None:
        async def raise_and_wake() -> int:
            raised = await raise_due_digests(
                self.factory, now=self.clock(), public_url=self.settings.public_url
            )
            if raised:
                self.wake_delivery()
            return raised

        return await self._run(DIGEST_JOB, raise_and_wake)

    async def run_source_syncs(self) -> int | None:
        return await self._run(
            SOURCE_SYNC_JOB, lambda: queue_scheduled_syncs(self.factory, now=self.clock())
        )

    def wake_delivery(self) -> None:
        """Run delivery now rather than at its next tick."""
        self._wake(DELIVER_JOB)

    def wake_background(self) -> None:
        """Start a queued import or activation now rather than at the next tick."""
        self._wake(BACKGROUND_JOB)

    def _wake(self, job_id: str) -> None:
        """Run the job now; if a run is under way (it may be finishing and miss the new
        work), it goes round again when it ends."""
        if self.stopping.is_set() or not self.scheduler.running:
            return
        beat = self.beats[job_id]
        if beat.running:
            beat.again = True
            return
        self.scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))

    async def _run(self, job_id: str, work: Callable[[], Awaitable[T]]) -> T | None:
        """Run one job in a task of its own; errors are logged, and the next tick tries again."""
        if self.stopping.is_set():
            return None
        beat = self.beats[job_id]
        beat.started, beat.running = time.monotonic(), True

        async def guarded() -> T | None:
            try:
                result = await work()
                # Woken while running: go again now (bounded; the next tick takes over).
                for _ in range(MAX_EXTRA_PASSES):
                    if not beat.again or self.stopping.is_set():
                        break
                    beat.again, beat.started = False, time.monotonic()
                    result = await work()
                return result
            except Exception:
                log.exception("job %s failed; it runs again at its next tick", job_id)
                return None
            finally:
                beat.running = beat.again = False

        task = asyncio.create_task(guarded())
        self.runs.add(task)
        task.add_done_callback(self.runs.discard)
        return await asyncio.shield(task)

    def readiness(self) -> str:
        """'ok' while the scheduler runs and every job has started recently (or is running
        within its bound); otherwise what is wrong."""
        if not self.scheduler.running:
            return "stopped"
        now = time.monotonic()
        for job_id, beat in self.beats.items():
            age = now - beat.started
            if beat.running and age > beat.max_run:
                return f"stalled: {job_id} has been running for {age:.0f}s"
            if not beat.running and age > 3 * beat.interval + STALL_GRACE_SECONDS:
                return f"stalled: {job_id} has not run for {age:.0f}s"
        return "ok"


async def start_jobs(app: FastAPI) -> Jobs:
    """Start this process's scheduler, from the lifespan."""
    jobs = Jobs(
        settings=app.state.settings, factory=app.state.session_factory, clock=app.state.clock
    )
    await jobs.start()
    return jobs
