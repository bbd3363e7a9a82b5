"""Ingest throughput, server run as in production, on PostgreSQL or SQLite; prints JSON.

After a warm-up (a hundred cases, then ANALYZE: see `warm_up`), measures, in the same run:
single-event POSTs from 32 concurrent clients, 1000-event batches, a bare FastAPI endpoint
inserting one row (1 worker), and raw executemany, then our ratios to those yardsticks.
Beside each rate, the CPU an event cost the server, PostgreSQL and this load generator: the
three share the machine's cores, so their sum bounds what any rate can be.

With `--database sqlite` the service runs the embedded default (`make run`: one process, a
SQLite file in WAL mode with synchronous=FULL), the bare endpoint inserts and commits one row
through aiosqlite in the same modes, and executemany is the standard library's sqlite3.

    .venv/bin/python -m bench.ingest [--runs 3] [--workers 2] [--database postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import aiohttp
import asyncpg

from bench.caseloads import caseload
from bench.harness import (
    BIN,
    admin_key,
    caseclock_env,
    free_port,
    fresh_database,
    median,
    percentile,
    postgres_cpu_seconds,
    process_tree_cpu_seconds,
    server,
)


async def post_singles(
    base: str, key: str, logs: list[list[dict]], clients: int
) -> tuple[float, list[float]]:
    """Each client posts whole cases, event by event, as a CMS would.

    Bodies are encoded before the clock starts: the load generator shares the machine's two
    cores with the server and PostgreSQL, and its own JSON encoding is not the service's cost.
    """
    latencies: list[float] = []
    queues = [
        [json.dumps(e).encode() for e in chain.from_iterable(logs[i::clients])]
        for i in range(clients)
    ]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:

        async def client(bodies: list[bytes]) -> None:
            for body in bodies:
                started = time.perf_counter()
                async with http.post("/v1/events", data=body) as response:
                    await response.read()
                    if response.status not in (200, 201):
                        raise RuntimeError(f"{response.status}: {await response.text()}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client(q) for q in queues))
        elapsed = time.perf_counter() - started
    return elapsed, latencies


async def post_batches(base: str, key: str, batches: list[list[dict]], concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [json.dumps({"events": batch}).encode() for batch in batches]
    async with aiohttp.ClientSession(base, headers=headers) as http:
        semaphore = asyncio.Semaphore(concurrency)

        async def send(body: bytes) -> None:
            async with semaphore, http.post("/v1/events/batch", data=body) as r:
                body = await r.json(content_type=None)
                if "results" not in body:
                    raise RuntimeError(f"{r.status}: {body}")
                bad = [x for x in body["results"] if x["status"] != "created"]
                if r.status != 200 or bad:
                    raise RuntimeError(f"{r.status}: {bad[:3]}")

        started = time.perf_counter()
        await asyncio.gather(*(send(b) for b in bodies))
        return time.perf_counter() - started


async def warm_up(base: str, key: str, dsn: str | None, clients: int) -> None:
    """Post a hundred cases, then ANALYZE, as autovacuum does within a minute of real use.

    The figures then describe a service in use, not the first minute of a new database (whose
    tiny tables the planner, without statistics, reckons hold about one row an organisation:
    docs/operations.md, Statistics; bench/soak.py measures a database never analyzed).
    """
    await post_singles(base, key, list(caseload(100, seed=999, prefix="WARM-")), clients)
    if dsn is None:  # SQLite plans from its own rules until it is analyzed
        return
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def executemany_rate(dsn: str, rows: int) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS em_rows (id text primary key, case_id text, type text, "
            "occurred_at timestamptz, worker_id text, team_id text, data jsonb)"
        )
        stamp = time.monotonic_ns()
        values = [
            (f"r{i}-{stamp}", f"C{i // 10}", "child_visited", "W-1", "T-1", "{}")
            for i in range(rows)
        ]
        started = time.perf_counter()
        await connection.executemany(
            "INSERT INTO em_rows VALUES ($1, $2, $3, now(), $4, $5, $6::jsonb)",
            values,
        )
        return rows / (time.perf_counter() - started)
    finally:
        await connection.close()


def sqlite_executemany_rate(path: Path, rows: int) -> float:
    """Raw executemany into SQLite in one transaction, in the modes the service uses."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS em_rows (id TEXT PRIMARY KEY, case_id TEXT, type TEXT, "
            "occurred_at TEXT, worker_id TEXT, team_id TEXT, data TEXT)"
        )
        stamp = time.monotonic_ns()
        values = [
            (f"r{i}-{stamp}", f"C{i // 10}", "child_visited", "W-1", "T-1", "{}")
            for i in range(rows)
        ]
        started = time.perf_counter()
        with connection:
            connection.executemany(
                "INSERT INTO em_rows VALUES (?, ?, ?, datetime('now'), ?, ?, ?)", values
            )
        return rows / (time.perf_counter() - started)
    finally:
        connection.close()


async def baseline_rate(
    target: Target, logs: list[list[dict]], clients: int
) -> tuple[float, float]:
    if target.sqlite_path is None:
        connection = await asyncpg.connect(target.dsn)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS baseline_events (id text primary key, case_id text, "
            "type text, body text)"
        )
        await connection.close()
    port = free_port()
    command = [
        str(BIN / "uvicorn"),
        "bench.baseline_app:sqlite_app" if target.sqlite_path else "bench.baseline_app:app",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {
        **target.env,
        "BENCH_BASELINE_DSN": target.dsn,
        "BENCH_BASELINE_SQLITE": str(target.sqlite_path.with_name("baseline.db"))
        if target.sqlite_path
        else "",
    }
    with server(command, env, port) as (base, pid):
        before = process_tree_cpu_seconds(pid)
        elapsed, _ = await post_singles(base, "unused", logs, clients)
        cpu = process_tree_cpu_seconds(pid) - before
    events = sum(len(c) for c in logs)
    return events / elapsed, cpu * 1000 / events


# Where the machine's CPU goes: the service, PostgreSQL and this load generator share it.
CPU_PARTS = ("server", "postgres", "load_generator")
PHASES = ("single", "batch")


def cpu_now(server_pid: int, postgres: bool) -> tuple[float, float, float]:
    database = postgres_cpu_seconds() if postgres else 0.0
    return process_tree_cpu_seconds(server_pid), database, time.process_time()


class Target:
    """Where the service keeps its data for a run: a fresh PostgreSQL database, or a SQLite
    file in a directory of its own (`sqlite_path`)."""

    def __init__(self, dsn: str, env: dict[str, str], sqlite_path: Path | None) -> None:
        self.dsn, self.env, self.sqlite_path = dsn, env, sqlite_path

    def executemany_rate(self, rows: int) -> float:
        if self.sqlite_path is not None:
            return sqlite_executemany_rate(self.sqlite_path.with_name("executemany.db"), rows)
        return asyncio.run(executemany_rate(self.dsn, rows))


@contextlib.contextmanager
def target_database(kind: str) -> Iterator[Target]:
    if kind == "postgresql":
        with fresh_database() as dsn:
            yield Target(dsn, caseclock_env(dsn), None)
        return
    with tempfile.TemporaryDirectory(prefix="caseclock-bench-") as folder:
        path = Path(folder) / "caseclock.db"
        env = caseclock_env("", CASECLOCK_DATABASE_URL=f"sqlite+aiosqlite:///{path}")
        yield Target("", env, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--single-cases", type=int, default=600)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    postgres = args.database == "postgresql"
    # The embedded default is one process: SQLite has one writer, whatever the workers.
    workers = args.workers if postgres else 1

    figures: dict[str, list[float]] = {
        k: []
        for k in (
            "single_events_per_s",
            "single_p50_ms",
            "single_p99_ms",
            "batch_events_per_s",
            "baseline_requests_per_s",
            "executemany_rows_per_s",
            *(f"{phase}_{part}_cpu_ms_per_event" for phase in PHASES for part in CPU_PARTS),
            "baseline_server_cpu_ms_per_request",
        )
    }
    with target_database(args.database) as target:
        env = target.env
        key = admin_key(env)
        port = free_port()
        command = [
            str(BIN / "caseclock"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        with server(command, env, port) as (base, _pid):
            asyncio.run(warm_up(base, key, target.dsn if postgres else None, args.clients))
        for run in range(args.runs):
            singles = list(caseload(args.single_cases, seed=run, prefix=f"S{run}-"))
            batch_logs = list(caseload(args.batches * 100, seed=100 + run, prefix=f"B{run}-"))
            flat = list(chain.from_iterable(batch_logs))
            batches = [flat[i : i + 1000] for i in range(0, len(flat), 1000)]
            with server(command, env, port) as (base, pid):
                before = cpu_now(pid, postgres)
                elapsed, latencies = asyncio.run(post_singles(base, key, singles, args.clients))
                between = cpu_now(pid, postgres)
                batch_elapsed = asyncio.run(post_batches(base, key, batches, 2))
                after = cpu_now(pid, postgres)
            for phase, start, end, events in (
                ("single", before, between, len(latencies)),
                ("batch", between, after, sum(map(len, batches))),
            ):
                for part, was, now in zip(CPU_PARTS, start, end, strict=True):
                    figures[f"{phase}_{part}_cpu_ms_per_event"].append((now - was) * 1000 / events)
            figures["single_events_per_s"].append(len(latencies) / elapsed)
            figures["single_p50_ms"].append(percentile(latencies, 0.50) * 1000)
            figures["single_p99_ms"].append(percentile(latencies, 0.99) * 1000)
            figures["batch_events_per_s"].append(sum(map(len, batches)) / batch_elapsed)
            baseline_logs = list(caseload(args.single_cases, seed=run, prefix=f"Y{run}-"))
            rate, cpu_ms = asyncio.run(baseline_rate(target, baseline_logs, args.clients))
            figures["baseline_requests_per_s"].append(rate)
            figures["baseline_server_cpu_ms_per_request"].append(cpu_ms)
            figures["executemany_rows_per_s"].append(target.executemany_rate(50_000))

    result = {k: round(median(v), 2) for k, v in figures.items()}
    result["database"] = args.database
    result["runs"] = args.runs
    result["workers"] = workers
    result["single_ratio_to_bare_endpoint"] = round(
        result["single_events_per_s"] / result["baseline_requests_per_s"], 2
    )
    result["batch_ratio_to_executemany"] = round(
        result["batch_events_per_s"] / result["executemany_rows_per_s"], 2
    )
    result["single_cpu_ratio_to_bare_endpoint"] = round(
        result["baseline_server_cpu_ms_per_request"] / result["single_server_cpu_ms_per_event"], 2
    )
    result["all_runs"] = {
        k: [round(x, 3 if "cpu" in k else 1) for x in v] for k, v in figures.items()
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
