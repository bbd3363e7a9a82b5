"""Sustained single-event ingest on a PostgreSQL database that is never analyzed; prints JSON.

A fresh database, a real `caseclock serve`, and `--writers` clients each posting whole cases
event by event for `--minutes`. For every window (30 s by default) one JSON line: the events
written, and the CPU an event cost the server (its process tree) and PostgreSQL (the backends
serving this database, so other databases on the machine do not count), with the machine's
load beside them. Then a summary: last window against first, the index and table reads per
event over the run, and whether any table was analyzed.

The cost of an event must not grow with the data while the planner has no statistics
(docs/operations.md, Statistics). `--analyze-every 15` runs ANALYZE every 15 seconds: the
yardstick, what fresh statistics give.

    .venv/bin/python -m bench.soak [--minutes 5] [--writers 8] [--analyze-every 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.caseloads import case_events
from bench.harness import (
    BIN,
    admin_key,
    caseclock_env,
    free_port,
    fresh_database,
    process_tree_cpu_seconds,
    server,
)

TARGET_CPU_GROWTH = 1.2
TARGET_RATE_KEPT = 0.8


def database_cpu_seconds(database: str) -> float:
    """User + system CPU of the PostgreSQL backends connected to `database`, from /proc.

    The service's pool keeps its connections for the whole run, so their CPU is all of what
    PostgreSQL spends on its statements; background processes, shared with every other
    database on the machine, are left out.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not title.startswith("postgres: ") or f" {database} " not in title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def cases(writer: int) -> Iterator[list[dict[str, Any]]]:
    """An endless supply of case logs of one writer's own, as bench/caseloads.py makes them."""
    rng = random.Random(writer)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    for n in count():
        worker = rng.randrange(50)
        yield case_events(
            f"W{writer}-{n:07d}",
            end - timedelta(days=rng.uniform(120, 270)),
            rng,
            worker=f"W-{worker:04d}",
            team=f"T-{worker % 5}",
        )


class Load:
    """Writers posting single events until told to stop, counting what was written."""

    def __init__(self, base: str, key: str, writers: int) -> None:
        self.base, self.key, self.writers = base, key, writers
        self.events = 0
        self.stopping = False

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=self.writers)
        async with aiohttp.ClientSession(self.base, headers=headers, connector=connector) as http:
            await asyncio.gather(*(self._writer(http, w) for w in range(self.writers)))

    async def _writer(self, http: aiohttp.ClientSession, writer: int) -> None:
        for log in cases(writer):
            for event in log:
                if self.stopping:
                    return
                async with http.post("/v1/events", data=json.dumps(event)) as response:
                    await response.read()
                    if response.status not in (200, 201):
                        raise RuntimeError(f"{response.status}: {await response.text()}")
                self.events += 1


async def analyze_every(dsn: str, seconds: float, load: Load) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        while not load.stopping:
            await asyncio.sleep(seconds)
            await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def index_tuples_read(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT sum(idx_tup_read) FROM pg_stat_user_indexes"))
    finally:
        await connection.close()


async def reads_per_event(dsn: str, events: int) -> dict[str, Any]:
    """What the run read, per event written: index tuples by index, table rows by sequential
    scan by table (an organisation-wide read shows as thousands), and which tables were
    analyzed (none, unless `--analyze-every`)."""
    connection = await asyncpg.connect(dsn)
    try:
        indexes = await connection.fetch(
            "SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes "
            "WHERE idx_tup_read > 0 ORDER BY idx_tup_read DESC LIMIT 8"
        )
        tables = await connection.fetch(
            "SELECT relname, seq_tup_read, last_analyze FROM pg_stat_user_tables ORDER BY relname"
        )
    finally:
        await connection.close()
    return {
        "index_tuples_read_per_event": {
            r["indexrelname"]: round(r["idx_tup_read"] / events, 2) for r in indexes
        },
        "seq_scan_rows_read_per_event": {
            r["relname"]: round(r["seq_tup_read"] / events, 2) for r in tables if r["seq_tup_read"]
        },
        "analyzed_tables": [r["relname"] for r in tables if r["last_analyze"] is not None],
    }


async def soak(base: str, key: str, dsn: str, server_pid: int, args: argparse.Namespace) -> None:
    database = dsn.rsplit("/", 1)[1]
    load = Load(base, key, args.writers)
    writing = asyncio.create_task(load.run())
    analyzing = (
        asyncio.create_task(analyze_every(dsn, args.analyze_every, load))
        if args.analyze_every
        else None
    )
    windows: list[dict[str, Any]] = []
    started = time.monotonic()
    mark = (
        load.events,
        process_tree_cpu_seconds(server_pid),
        database_cpu_seconds(database),
        await index_tuples_read(dsn),
    )
    for n in range(int(args.minutes * 60 // args.window)):
        await asyncio.sleep(started + (n + 1) * args.window - time.monotonic())
        if writing.done():
            writing.result()  # a failed writer stops the run with its error
        now = (
            load.events,
            process_tree_cpu_seconds(server_pid),
            database_cpu_seconds(database),
            await index_tuples_read(dsn),
        )
        events = now[0] - mark[0]
        window = {
            "window": f"{n * args.window}-{(n + 1) * args.window} s",
            "events": events,
            "server_cpu_ms_per_event": round((now[1] - mark[1]) * 1000 / max(events, 1), 3),
            "postgres_cpu_ms_per_event": round((now[2] - mark[2]) * 1000 / max(events, 1), 3),
            "index_tuples_read_per_event": round((now[3] - mark[3]) / max(events, 1), 1),
            "load_1min": round(os.getloadavg()[0], 2),
            "events_total": now[0],
        }
        windows.append(window)
        print(json.dumps(window), flush=True)
        mark = now
    load.stopping = True
    await writing
    if analyzing:
        await analyzing
    first, last = windows[0], windows[-1]
    cpu_growth = last["postgres_cpu_ms_per_event"] / first["postgres_cpu_ms_per_event"]
    rate_kept = last["events"] / first["events"]
    summary = {
        "minutes": args.minutes,
        "writers": args.writers,
        "workers": args.workers,
        "analyze_every_s": args.analyze_every or None,
        "events": load.events,
        "postgres_cpu_last_over_first": round(cpu_growth, 2),
        "events_last_over_first": round(rate_kept, 2),
        "target_met": cpu_growth <= TARGET_CPU_GROWTH and rate_kept >= TARGET_RATE_KEPT,
        **await reads_per_event(dsn, load.events),
    }
    print(json.dumps(summary, indent=2), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--window", type=int, default=30, help="seconds per reported window")
    parser.add_argument(
        "--analyze-every", type=float, default=0, help="seconds between ANALYZEs (0: never)"
    )
    args = parser.parse_args()
    with fresh_database() as dsn:
        env = caseclock_env(dsn)
        key = admin_key(env)
        port = free_port()
        command = [
            str(BIN / "caseclock"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        with server(command, env, port) as (base, pid):
            asyncio.run(soak(base, key, dsn, pid, args))


if __name__ == "__main__":
    main()
