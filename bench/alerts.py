"""Alert delivery throughput and the idle sweep tick on PostgreSQL; prints JSON.

1. 10,000 obligations go overdue at once: they are ingested (in this process) just before
   their due instant, so when `caseclock serve` starts, its first sweep tick finds them all
   due. Measured: from that tick's start (read from the server's log) until a local receiver
   has all 10,000 deliveries; the server's peak RSS.
2. The same receiver's raw fan-out rate: a bare aiohttp loop of signed POSTs, same body size
   and concurrency, and our ratio to it.
3. An idle sweep tick with 1,000,000 open obligations (copied in directly), timed in process.

The receiver runs in its own process and counts distinct `webhook-id`s.

    .venv/bin/python -m bench.alerts [--obligations 10000] [--idle-obligations 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import uvloop

from bench.harness import BIN, ROOT, caseclock_env, cli, free_port, fresh_database
from service.domain.events import Event
from service.domain.rules import load_ruleset
from service.jobs.sweep import sweep
from service.store.db import make_engine, make_session_factory, transaction
from service.store.ingest import ingest_events
from service.store.orgs import org_by_name, set_ruleset
from service.store.subscriptions import create_subscription
from service.webhooks.signing import headers, new_secret

DELIVERY_TIMEOUT_SECONDS = 300
CONCURRENCY = 64
RULESET = """
id = "bench-tasks"

[calendar]
region = "england-and-wales"
timezone = "Europe/London"

[[rules]]
id = "task"
name = "Task done by its due date"
source = "benchmark"
starts_on = ["task_due"]
due = "from:data.due_at"
met_by = ["task_completed"]
"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Receiver(asyncio.Protocol):
    """Keep-alive HTTP/1.1 sink: 200 to every POST, counting distinct webhook-ids.

    `GET /stats` answers {"distinct", "total", "last"} (last: when the latest new id came).
    """

    seen: set[bytes] = set()  # noqa: RUF012 - one receiver per process
    total = 0
    last = 0.0

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            length = (
                int(m.group(1)) if (m := re.search(rb"\r\ncontent-length: *(\d+)", head)) else 0
            )
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            if head.startswith(b"get /stats"):
                body = json.dumps(
                    {"distinct": len(Receiver.seen), "total": Receiver.total, "last": Receiver.last}
                ).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                continue
            Receiver.total += 1
            found = re.search(rb"\r\nwebhook-id: *([^\r]+)", head)
            if found and found.group(1) not in Receiver.seen:
                Receiver.seen.add(found.group(1))
                Receiver.last = time.time()
            self.transport.write(OK)


def serve(fd: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            Receiver, sock=socket.socket(fileno=fd)
        )
        async with server:
            await server.serve_forever()

    uvloop.run(main())


async def stats(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/stats")
        result: dict[str, Any] = response.json()
        return result


async def seed(url: str, receiver_url: str, obligations: int) -> datetime:
    """Tasks due at the end of yesterday, ingested an hour before: nothing owed yet, every
    check due already. Returns the due instant."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    ruleset = load_ruleset(RULESET)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    due_at = ruleset.calendar.end_of_day(yesterday)
    ingested_at = due_at - timedelta(hours=1)
    try:
        async with transaction(factory) as session:
            org = await org_by_name(session, "bench")
            assert org is not None
            await set_ruleset(
                session, org_id=org.id, ruleset_id=ruleset.id, text=RULESET, fmt="toml"
            )
            await create_subscription(
                session,
                org_id=org.id,
                url=receiver_url,
                description="bench",
                event_types=None,
                team_ids=None,
                rule_ids=None,
                now=ingested_at,
            )
            org_id = org.id
        for start in range(0, obligations, 1000):
            events = [
                Event(
                    id=f"task-{n}",
                    type="task_due",
                    case_id=f"C-{n:06d}",
                    occurred_at=ingested_at - timedelta(days=3),
                    worker_id=f"W-{n % 50}",
                    team_id=f"T-{n % 5}",
                    data={"task_id": f"t-{n}", "due_at": yesterday.isoformat()},
                )
                for n in range(start, min(start + 1000, obligations))
            ]
            async with transaction(factory) as session:
                await ingest_events(session, org_id, ruleset, events, ingested_at)
    finally:
        await engine.dispose()
    return due_at


def first_sweep(log: Path) -> tuple[float, float] | tuple[None, None]:
    """When the first sweep that enqueued alerts started, and how long it took, from the
    server's JSON log."""
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        found = re.match(
            r"sweep checked (\d+) obligations and enqueued (\d+) alerts in ([\d.]+)s",
            entry.get("message", ""),
        )
        if found and int(found.group(2)):
            ended = datetime.fromisoformat(entry["time"]).timestamp()
            return ended - float(found.group(3)), float(found.group(3))
    return None, None


def peak_rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_rss_mb": round(fields["VmHWM"], 1)}


async def deliveries(url: str, port: int, obligations: int, workdir: Path) -> dict[str, Any]:
    """Start the server, wait until the receiver has every delivery, stop the server."""
    env = caseclock_env(
        url,
        CASECLOCK_RUN_SCHEDULER="true",
        CASECLOCK_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
        CASECLOCK_SWEEP_INTERVAL_SECONDS="30",
    )
    server_port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as sink:
        server = await asyncio.create_subprocess_exec(
            str(BIN / "caseclock"),
            *("serve", "--port", str(server_port), "--workers", "1"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        try:
            done: dict[str, Any] = {}
            deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                done = await stats(port)
                if done["distinct"] >= obligations or server.returncode is not None:
                    break
                await asyncio.sleep(0.05)
            memory = peak_rss_mb(server.pid) if server.returncode is None else {}
        finally:
            if server.returncode is None:
                server.terminate()
            await asyncio.wait_for(server.wait(), timeout=30)
    started, sweep_seconds = first_sweep(log)
    if started is None or sweep_seconds is None or done["distinct"] < obligations:
        raise RuntimeError(f"not delivered: {done}; server log:\n{log.read_text()[-3000:]}")
    seconds = done["last"] - started
    return {
        "obligations_overdue": obligations,
        "delivered_distinct": done["distinct"],
        "requests_received": done["total"],
        "sweep_seconds": round(sweep_seconds, 3),
        "seconds_from_sweep_tick_to_last_delivery": round(seconds, 3),
        "deliveries_per_s": round(obligations / seconds),
        **memory,
    }


async def raw_fan_out(port: int, requests: int) -> float:
    """A bare aiohttp loop of signed POSTs to the same receiver: the ceiling for this setup."""
    body = json.dumps({"type": "obligation.overdue", "data": {"pad": "x" * 700}}).encode()
    secret = new_secret()
    url = f"http://127.0.0.1:{port}/raw"
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(jobs: range) -> None:
            for n in jobs:
                signed = headers([secret], f"raw_{n}_{uuid.uuid4().hex}", int(time.time()), body)
                async with session.post(url, data=body, headers=signed) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker(range(i, requests, CONCURRENCY)) for i in range(CONCURRENCY)))
        return requests / (time.perf_counter() - started)


async def idle_tick(url: str, open_obligations: int, ticks: int = 50) -> dict[str, Any]:
    """Copy in open obligations checked next far ahead, then time sweep ticks that find nothing."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        org_id = await connection.fetchval("SELECT id FROM orgs WHERE name = 'bench'")
        now = datetime.now(UTC)
        later = now + timedelta(days=365)
        stamp = uuid.uuid4().hex[:6]
        for start in range(0, open_obligations, 100_000):
            rows = [
                (
                    org_id,
                    f"idle-{stamp}-{n}",
                    f"I-{n}",
                    "task",
                    "Task done by its due date",
                    1,
                    now,
                    later,
                    "[]",
                    "[]",
                    f"idle-ev-{n}",
                    later + timedelta(seconds=n % 86_400),
                    "bench",
                )
                for n in range(start, min(start + 100_000, open_obligations))
            ]
            await connection.copy_records_to_table(
                "obligations",
                records=rows,
                columns=[
                    "org_id",
                    "id",
                    "case_id",
                    "rule_id",
                    "rule_name",
                    "sequence",
                    "opened_at",
                    "due_at",
                    "escalate_at",
                    "at_risk_periods",
                    "opened_by_event",
                    "next_check_at",
                    "digest",
                ],
            )
        await connection.execute("ANALYZE obligations")
        total_open = await connection.fetchval(
            "SELECT count(*) FROM obligations WHERE closed_at IS NULL"
        )
    finally:
        await connection.close()
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        await sweep(factory, now=datetime.now(UTC))  # warm the pool and the plan
        samples = []
        for _ in range(ticks):
            result = await sweep(factory, now=datetime.now(UTC))
            assert result.checked == 0, result
            samples.append(result.seconds * 1000)
    finally:
        await engine.dispose()
    samples.sort()
    return {
        "open_obligations": total_open,
        "ticks": ticks,
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 3),
        "max_ms": round(samples[-1], 3),
    }


async def run(args: argparse.Namespace, port: int, url: str, workdir: Path) -> dict[str, Any]:
    await seed(url, f"http://127.0.0.1:{port}/alerts", args.obligations)
    delivered = await deliveries(url, port, args.obligations, workdir)
    raw = await raw_fan_out(port, args.obligations)
    idle = await idle_tick(url, args.idle_obligations)
    return {
        "database": "postgresql",
        "cpus": os.cpu_count(),
        "delivery": delivered,
        "raw_fan_out_per_s": round(raw),
        "ratio_to_raw_fan_out": round(delivered["deliveries_per_s"] / raw, 3),
        "idle_sweep_tick": idle,
        "targets": {
            "deliveries_per_s": ">= 1000",
            "server_rss_mb": "< 300",
            "idle_sweep_tick_ms": "< 20",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obligations", type=int, default=10_000)
    parser.add_argument("--idle-obligations", type=int, default=1_000_000)
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fd is not None:
        serve(args.serve_fd)
        return
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = listener.getsockname()[1]
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.alerts", "--serve-fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
        cwd=ROOT,
    )
    listener.close()
    try:
        with fresh_database() as plain, tempfile.TemporaryDirectory() as workdir:
            env = caseclock_env(plain)
            cli(env, "migrate")
            cli(env, "org", "create", "bench")
            result = asyncio.run(run(args, port, env["CASECLOCK_DATABASE_URL"], Path(workdir)))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
