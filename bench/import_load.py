"""Import a large Annex A workbook over HTTP while dashboard readers keep reading.

Builds the workbook ``bench/annex_a_read.py`` builds (lists 3-9, ``--rows`` rows each: 35,000
rows at the default), starts ``caseclock serve`` with its scheduler on a fresh database, and
keeps ``--clients`` readers reading ``/v1/obligations`` and ``/v1/dashboard/summary`` in turn
(each pausing ``--think-ms`` between requests, as a dashboard would). Then, per run:

- 5 s of reads before anything is imported;
- the import: POST, then poll ``GET /v1/imports/{id}`` until done, timed from the POST;
- 5 s of reads after it;
- the same file imported again (every event a duplicate), timed the same way.

The yardstick is the time the service's reader alone needs for the file
(``read_annex_a``, as ``bench/annex_a_read.py`` times it), measured in the same process
before the server starts; each import time is also given as its ratio to it.

Prints JSON: per run, read p50/p99 (ms) before, during the import, after, and during the
re-import; the import and re-import times; the load average beside them. With several runs,
the medians. ``--clients 0`` times the import alone, with no one reading: what the import
costs itself, apart from the CPU the readers take from it.

    .venv/bin/python -m bench.import_load --database sqlite [--runs 3] [--rows 5000]
    .venv/bin/python -m bench.import_load --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.annex_a_read import EXTRACTED_ON, build, service_read
from bench.harness import (
    BIN,
    admin_key,
    caseclock_env,
    free_port,
    fresh_database,
    percentile,
    server,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
QUIET_SECONDS = 5.0
READS = ("/v1/obligations", "/v1/dashboard/summary")


@contextlib.contextmanager
def database(kind: str) -> Iterator[dict[str, str]]:
    """The environment of a service on a fresh database of this kind, scheduler on."""
    if kind == "postgresql":
        with fresh_database() as url:
            yield caseclock_env(url, CASECLOCK_RUN_SCHEDULER="true")
        return
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'caseclock.db'}"
        yield caseclock_env(url, CASECLOCK_DATABASE_URL=url, CASECLOCK_RUN_SCHEDULER="true")


class Readers:
    """Clients reading in a loop; each latency is filed under the phase it started in."""

    def __init__(self, client: httpx.AsyncClient, clients: int, think: float) -> None:
        self.client = client
        self.clients = clients
        self.think = think
        self.phase = "before"
        self.latencies: dict[str, list[float]] = {}
        self.failures = 0
        self.stop = asyncio.Event()

    async def read(self, index: int) -> None:
        turn = index
        while not self.stop.is_set():
            phase = self.phase
            began = time.perf_counter()
            response = await self.client.get(READS[turn % len(READS)])
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                self.failures += 1
            self.latencies.setdefault(phase, []).append(elapsed * 1000)
            turn += 1
            await asyncio.sleep(self.think)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            phase: {
                "requests": len(values),
                "p50_ms": round(percentile(values, 0.5), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
            }
            for phase, values in self.latencies.items()
        }


async def timed_import(client: httpx.AsyncClient, data: bytes) -> tuple[float, dict[str, Any]]:
    """Seconds from the POST to the import's `done`, and its final state."""
    began = time.perf_counter()
    response = await client.post(
        "/v1/imports/annex-a",
        params={"extracted_on": EXTRACTED_ON.isoformat()},
        content=data,
        headers={"content-type": XLSX},
        timeout=120,
    )
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    while True:
        status = (await client.get(location)).json()
        if status["state"] in ("done", "failed"):
            return time.perf_counter() - began, status
        await asyncio.sleep(0.1)


async def one_run(base: str, key: str, data: bytes, clients: int, think: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:
        readers = Readers(client, clients, think)
        tasks = [asyncio.create_task(readers.read(i)) for i in range(clients)]
        await asyncio.sleep(QUIET_SECONDS)
        readers.phase = "during_import"
        import_seconds, first = await timed_import(client, data)
        readers.phase = "after"
        await asyncio.sleep(QUIET_SECONDS)
        readers.phase = "during_reimport"
        reimport_seconds, again = await timed_import(client, data)
        readers.stop.set()
        await asyncio.gather(*tasks)
    created = sum(item["events_created"] for item in first["report"]["lists"])
    duplicates = sum(item["events_duplicate"] for item in again["report"]["lists"])
    return {
        "import_s": round(import_seconds, 2),
        "reimport_s": round(reimport_seconds, 2),
        "events_created": created,
        "reimport_duplicates": duplicates,
        "states": [first["state"], again["state"]],
        "reads": readers.summary(),
        "read_failures": readers.failures,
        "loadavg_after": os.getloadavg(),
    }


def yardstick(data: bytes, runs: int = 3) -> float:
    """The median time the service's reader alone takes for the file."""
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        service_read(data)
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=5000, help="rows per list (7 lists)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--think-ms", type=float, default=100.0)
    args = parser.parse_args()
    data = build(args.rows)
    read_s = yardstick(data)
    runs = []
    for _ in range(args.runs):
        with database(args.database) as env:
            key = admin_key(env)
            port = free_port()
            command = [str(BIN / "caseclock"), "serve", "--port", str(port)]
            with server(command, env, port) as (base, _pid):
                result = asyncio.run(one_run(base, key, data, args.clients, args.think_ms / 1000))
        result["import_ratio_to_read"] = round(result["import_s"] / read_s, 1)
        result["reimport_ratio_to_read"] = round(result["reimport_s"] / read_s, 1)
        runs.append(result)
        print(json.dumps(result), flush=True)

    def med(pick: Any) -> float:
        return round(statistics.median(pick(run) for run in runs), 2)

    report = {
        "database": args.database,
        "rows": args.rows * 7,
        "clients": args.clients,
        "think_ms": args.think_ms,
        "yardstick_read_s": round(read_s, 3),
        "median": {
            "import_s": med(lambda r: r["import_s"]),
            "reimport_s": med(lambda r: r["reimport_s"]),
            "import_ratio_to_read": med(lambda r: r["import_ratio_to_read"]),
            "reimport_ratio_to_read": med(lambda r: r["reimport_ratio_to_read"]),
            **{
                f"{phase}_{q}": med(lambda r, phase=phase, q=q: r["reads"][phase][q])
                for phase in ("before", "during_import", "after", "during_reimport")
                for q in ("p50_ms", "p99_ms")
                if all(phase in run["reads"] for run in runs)
            },
        },
        "runs": runs,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
