"""Background jobs run by the service's scheduler, each in a process of its own.

A job run in a thread of the server (`background.run_in_thread`) has an event loop and
connections of its own, but shares the interpreter lock with the request handlers: reading
and mapping a workbook, deriving cases and building statements held up the dashboard's reads
while an import ran, and the import itself ran slower than from the command line. Here the
scheduler's runner claims each job as before and hands it to a child process that runs it the
same way (`run_in_thread` there: its own loop, engine and connections), while the server's
event loop only watches it.

The child is forked from a fork server ("forkserver"), never from this multi-threaded process
(a fork copies locks other threads may hold): a fresh interpreter, started when the server's
first job is to run, that has imported this module (the jobs' code) and the database drivers
once. Started with
"spawn", each child was a fresh interpreter that spent a second or more importing all that
before its job began. Two one-way pipes join server and child: the server tells the child
when the service is stopping, so it hands its job back at the end of its step as in a thread;
the child sends back what it counted (events ingested, alerts enqueued) after each step, so
`/metrics` of the server shows it. A child never outlives its server: the fork server exits
when the server dies (it watches a pipe from it), the child asks the kernel to kill it when
its parent, the fork server, dies (Linux), and it exits as soon as the server's end of its
own pipe closes, which covers a server killed before that request was made. A child that
could not start or that died leaves its job's lease to run out; the job is then resumed, as
after a replica was killed.

The command line (`caseclock import`, `caseclock sync`) and the tests' `run_jobs` run jobs in
a thread still: the command line has nothing else to answer, and tests read a clock they set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Literal

from prometheus_client import Counter

from service.jobs.background import Clock, Progress, collect_less_often, run_in_thread
from service.logs import configure_logging
from service.metrics import ALERTS_ENQUEUED, DELIVERIES, EVENTS_INGESTED
from service.store.faults import fault_name
from service.store.jobs import Claim

log = logging.getLogger("caseclock.jobs.process")
# Forked from a fresh interpreter: nothing of the server's threads, locks or connections.
CONTEXT = multiprocessing.get_context("forkserver")
# What the fork server imports before its first fork: a job's code; the drivers its engine
# loads (SQLAlchemy imports them on creating it); and the command line's, which each child
# imports at its start, running again the server's main module (`caseclock`) as
# multiprocessing does. Imports only: nothing connects.
CONTEXT.set_forkserver_preload(
    [
        __name__,
        "sqlalchemy.dialects.sqlite.aiosqlite",
        "aiosqlite",
        "sqlalchemy.dialects.postgresql.asyncpg",
        "asyncpg",
        "service.cli",
    ]
)
# How often the parent looks at its child: for its counts, its end, and the stop to relay.
POLL_SECONDS = 0.05
# The counters a job may move (on commit, service/metrics.py), carried back to the parent.
CARRIED: tuple[Counter, ...] = (EVENTS_INGESTED, ALERTS_ENQUEUED, DELIVERIES)
STOP = "stop"
# The exit status of a child whose server died: it left without writing anything more.
ORPHANED = 3
PR_SET_PDEATHSIG = 1
# How much lower than the server's a job's process is scheduled (nice(2)).
JOB_NICENESS = 10

# A counter's increments: (metric name, label pairs, amount).
Counts = list[tuple[str, tuple[tuple[str, str], ...], float]]


@dataclass(frozen=True, slots=True)
class ChildJob:
    """What the child needs to run a claimed job; pickled to it, so nothing of the server's
    state (engine, sessions, app) goes along."""

    database_url: str
    claim: Claim
    # None: real UTC time. Any other clock goes as a copy of what it was at the claim.
    clock: Clock | None
    log_format: Literal["json", "console"]


@functools.cache
def start_fork_server() -> None:
    """Start the fork server and wait until it has imported what a job needs; blocking, so
    `run_in_process` calls it in a thread, once per process, when the first job is to run:
    a server that runs no job never starts one. A failure is logged: each job's start then
    tries again, and fails as it would have."""
    try:
        process = CONTEXT.Process(target=_ready, name="caseclock-job-warm-up", daemon=True)
        process.start()
        process.join()
        process.close()
    except Exception as exc:
        log.error("the jobs' fork server could not start (%s)", fault_name(exc))


def _ready() -> None:
    """A child that only shows the fork server is ready."""


async def run_in_process(
    database_url: str,
    claim: Claim,
    clock: Clock,
    stop: threading.Event,
    *,
    log_format: Literal["json", "console"],
) -> bool:
    """Run a claimed job in a child process until it ends; False if it could not start.

    Starting it asks the fork server for a fork: milliseconds once the server has imported
    what jobs need (`start_fork_server`), which the first job waits for, off the loop."""
    await asyncio.to_thread(start_fork_server)
    job = ChildJob(database_url, claim, _child_clock(clock), log_format)
    # Pipe(duplex=False) gives (reading end, writing end).
    child_commands, commands = CONTEXT.Pipe(duplex=False)
    reports, child_reports = CONTEXT.Pipe(duplex=False)
    process = CONTEXT.Process(
        target=_child_main,
        args=(job, child_commands, child_reports),
        name=f"caseclock-job-{claim.id}",
        daemon=True,
    )
    try:
        process.start()
    except Exception as exc:
        log.error(
            "job %s: its process could not start (%s); resumed once its lease runs out",
            claim.id,
            fault_name(exc),
        )
        commands.close()
        reports.close()
        return False
    finally:
        # The child holds its own copies; the parent's end reads EOF once the child is gone.
        child_commands.close()
        child_reports.close()
    log.info("job %s runs in process %s", claim.id, process.pid)
    try:
        await _watch(process, commands, reports, stop)
    except BaseException:
        # Cancelled (the service stopping past its grace): as if this replica were killed.
        process.kill()
        process.join()
        raise
    finally:
        commands.close()
        reports.close()
    if process.exitcode != 0:
        log.warning(
            "job %s: its process ended with status %s; resumed once its lease runs out",
            claim.id,
            process.exitcode,
        )
    process.close()
    return True


async def _watch(
    process: BaseProcess,
    commands: Connection,
    reports: Connection,
    stop: threading.Event,
) -> None:
    """Wait for the child without blocking the loop: relay the stop, add up its counts."""
    told = False
    while process.exitcode is None:
        if stop.is_set() and not told:
            with contextlib.suppress(OSError):  # it is ending anyway
                commands.send(STOP)
            told = True
        _take_counts(reports)
        await asyncio.sleep(POLL_SECONDS)
    _take_counts(reports)


def _child_clock(clock: Clock) -> Clock | None:
    """The clock the child reads: real UTC time when the service reads the system clock."""
    from service.api.deps import system_clock  # the parent's only: the child needs no API

    return None if clock is system_clock else clock


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _child_main(job: ChildJob, commands: Connection, reports: Connection) -> None:
    """The child's body: run the job, sending back what it counted after each step."""
    _die_with_parent()
    # On a machine it shares, the job gives way: requests are answered first, and the job
    # takes the CPU they leave.
    os.nice(JOB_NICENESS)
    stop = threading.Event()
    # The server may have died before the kernel was asked: its end of the pipe tells.
    _listen(commands, stop, wait=False)
    # Ctrl-C reaches the whole process group; the server relays its stop instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(job.log_format)
    threading.Thread(
        target=_listen, args=(commands, stop), name="caseclock-job-parent", daemon=True
    ).start()
    counted = _Counted()

    def send_counts(_progress: Progress | None = None) -> None:
        counts = counted.since_last()
        if counts:
            reports.send(counts)

    try:
        clock = _utc_now if job.clock is None else job.clock
        collect_less_often()
        run_in_thread(job.database_url, job.claim, clock, stop, send_counts)
    except Exception as exc:
        # Not the job's own failures (run_claimed keeps those on the job): the runner's.
        log.error("job %s: its process stopped on %s", job.claim.id, fault_name(exc))
        raise SystemExit(1) from None
    finally:
        send_counts()
        reports.close()


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent, the fork server, dies (Linux only): it
    exits when the server dies. The server's end of the pipe tells the rest."""
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the pipe's end still tells the child its server is gone


def _listen(commands: Connection, stop: threading.Event, *, wait: bool = True) -> None:
    """Set `stop` when the server says so; leave at once when the server is gone (its end of
    the pipe closes only when it dies: it keeps it open until this process has ended).
    With `wait` False, only what the pipe holds already."""
    try:
        while wait or commands.poll():
            if commands.recv() == STOP:
                stop.set()
    except (EOFError, OSError):
        os._exit(ORPHANED)


class _Counted:
    """What the carried counters of this process counted since the last look."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def since_last(self) -> Counts:
        counts: Counts = []
        for counter in CARRIED:
            for family in counter.collect():
                for sample in family.samples:
                    if not sample.name.endswith("_total"):
                        continue  # the _created timestamps
                    key = (family.name, tuple(sorted(sample.labels.items())))
                    amount = sample.value - self.seen.get(key, 0.0)
                    if amount:
                        self.seen[key] = sample.value
                        counts.append((key[0], key[1], amount))
        return counts


_BY_NAME = {family.name: counter for counter in CARRIED for family in counter.collect()}


def _take_counts(reports: Connection) -> None:
    """Add to this process's counters what the child has sent so far."""
    try:
        while reports.poll():
            counts: Counts = reports.recv()
            for name, labels, amount in counts:
                counter = _BY_NAME.get(name)
                if counter is not None:
                    (counter.labels(**dict(labels)) if labels else counter).inc(amount)
    except (EOFError, OSError):
        return  # the child has ended and everything it sent is read
