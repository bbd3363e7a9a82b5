"""A million-row CSV export on PostgreSQL: server memory while it streams; prints JSON.

Loads the synthetic authority of bench/dashboard.py (by default 1,000,000 obligations over
100,000 cases), then downloads `GET /v1/obligations?format=csv` from `caseclock serve`,
reading the server's resident memory (VmRSS of the process tree) every 50 ms. The target is
a peak under 200 MB. The yardsticks of the same run: the server's memory just before the
export, and the time PostgreSQL takes to COPY the same rows out (what a dump of the table
costs, with nothing computed per row).

    .venv/bin/python -m bench.export [--cases 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.dashboard import load
from bench.harness import BIN, admin_key, caseclock_env, free_port, fresh_database, median, server

TARGET_PEAK_RSS_MB = 200


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if entry.name == str(pid) or fields.get("PPid", "").strip() == str(pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def export_once(base: str, key: str, pid: int) -> dict[str, float]:
    peak = [tree_rss_mb(pid)]
    before = peak[0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(tree_rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    rows = size = 0
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=base, headers=headers, timeout=600) as client,
        client.stream("GET", "/v1/obligations", params={"format": "csv"}) as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes():
            rows += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "rows": rows - 1,
        "megabytes": round(size / 1e6, 1),
        "seconds": round(seconds, 1),
        "rows_per_second": round((rows - 1) / seconds),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(max(peak), 1),
    }


async def copy_out_seconds(dsn: str) -> float:
    """The yardstick: PostgreSQL writing the same rows as CSV, nothing computed per row."""
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await connection.copy_from_query(
            "SELECT * FROM obligations ORDER BY due_at, id",
            output=lambda _data: asyncio.sleep(0),
            format="csv",
        )
        return round(time.perf_counter() - started, 1)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with fresh_database() as pg:
        env = caseclock_env(pg)
        key = admin_key(env)

        async def org_id() -> str:
            connection = await asyncpg.connect(pg)
            try:
                return str(await connection.fetchval("SELECT id FROM orgs"))
            finally:
                await connection.close()

        data = asyncio.run(load(pg, asyncio.run(org_id()), args.cases, datetime.now(UTC)))
        port = free_port()
        command = [str(BIN / "caseclock"), "serve", "--port", str(port)]
        with server(command, env, port) as (base, pid):
            runs = [export_once(base, key, pid) for _ in range(args.runs)]
        copy_seconds = [asyncio.run(copy_out_seconds(pg)) for _ in range(args.runs)]
    peak = median([r["rss_peak_mb"] for r in runs])
    seconds = median([r["seconds"] for r in runs])
    print(
        json.dumps(
            {
                "scale": data,
                "runs": runs,
                "median_peak_rss_mb": peak,
                "median_seconds": seconds,
                "yardstick": {"copy_out_seconds": copy_seconds},
                "ratio_to_copy_out": round(seconds / median(copy_seconds), 1),
                "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
                "met": peak < TARGET_PEAK_RSS_MB,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
