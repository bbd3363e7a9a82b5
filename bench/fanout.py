"""Raw webhook fan-out rate of candidate HTTP clients, to choose the delivery job's client.

POSTs ~1 KB signed JSON bodies to a minimal keep-alive receiver on 127.0.0.1 with bounded
concurrency and prints, per event loop and client, the median requests/s over several runs,
the client's CPU time per request (the delivery job shares its loop with the API) and how many
connections each run opened (keep-alive churn). The receiver runs in its own process, pinned
to another core where there is one, so it neither shares nor limits the client's core.

    .venv/bin/python bench/fanout.py [--requests 5000] [--concurrency 64] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, cast

import aiohttp
import httpx
import uvloop
from httpx_aiohttp import AiohttpTransport

from service.webhooks.signing import headers, new_secret

RUN_TIMEOUT_SECONDS = 120.0
PACKAGES = ("httpx", "httpcore", "httpx-aiohttp", "aiohttp", "uvloop")
RECEIVER_MAX_BUFFER_BYTES = 64 * 1024
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
REFUSED_RESPONSE = b"HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

Post = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class Shot:
    """What every client sends, and how many requests it keeps in flight."""

    url: str
    body: bytes
    headers: dict[str, str]
    concurrency: int

    def tuned_limits(self) -> httpx.Limits:
        """Keep-alive sized to the concurrency, where httpx keeps 20 of up to 100 by default."""
        return httpx.Limits(
            max_connections=self.concurrency,
            max_keepalive_connections=self.concurrency,
            keepalive_expiry=30,
        )


ClientFactory = Callable[[Shot], AbstractAsyncContextManager[Post]]


class Receiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive sink answering 200 to every request with a Content-Length body.

    ``GET /stats`` answers the number of connections accepted so far instead.
    """

    connections = 0

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        Receiver.connections += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            length = _content_length(head)
            if length is None:
                self.transport.write(REFUSED_RESPONSE)
                self.transport.close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            if head.startswith(b"get /stats "):
                body = str(Receiver.connections).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                self.transport.write(OK_RESPONSE)
        if len(self.buffer) > RECEIVER_MAX_BUFFER_BYTES:
            self.transport.close()


def _content_length(head: bytes) -> int | None:
    """Body length of a lower-cased request head; None for chunked bodies, which are refused."""
    if b"\r\ntransfer-encoding:" in head:
        return None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            return int(value)
    return 0


def serve(fd: int, cpu: int | None) -> None:
    """Receiver process main: serve the listening socket inherited from the bench."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def main() -> None:
        sock = socket.socket(fileno=fd)
        server = await asyncio.get_running_loop().create_server(Receiver, sock=sock)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


@asynccontextmanager
async def httpx_default(shot: Shot) -> AsyncIterator[Post]:
    """httpx with its own transport (httpcore) and default limits (20 kept alive)."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield _httpx_post(client, shot)


@asynccontextmanager
async def httpx_tuned(shot: Shot) -> AsyncIterator[Post]:
    """httpx with its own transport and keep-alive sized to the concurrency."""
    async with httpx.AsyncClient(trust_env=False, limits=shot.tuned_limits()) as client:
        yield _httpx_post(client, shot)


@asynccontextmanager
async def httpx_aiohttp(shot: Shot) -> AsyncIterator[Post]:
    """httpx API over aiohttp via httpx-aiohttp, default limits (aiohttp keeps all idle)."""
    async with httpx.AsyncClient(trust_env=False, transport=AiohttpTransport()) as client:
        yield _httpx_post(client, shot)


@asynccontextmanager
async def httpx_aiohttp_tuned(shot: Shot) -> AsyncIterator[Post]:
    """httpx API over aiohttp with the same tuned limits (only max_connections maps across)."""
    transport = AiohttpTransport(limits=shot.tuned_limits())
    async with httpx.AsyncClient(trust_env=False, transport=transport) as client:
        yield _httpx_post(client, shot)


@asynccontextmanager
async def aiohttp_bare(shot: Shot) -> AsyncIterator[Post]:
    """aiohttp's own API: the ceiling the httpx-aiohttp adapter can approach."""
    async with aiohttp.ClientSession() as session:

        async def post() -> int:
            async with session.post(shot.url, data=shot.body, headers=shot.headers) as response:
                await response.read()
                return response.status

        yield post


def _httpx_post(client: httpx.AsyncClient, shot: Shot) -> Post:
    async def post() -> int:
        response = await client.post(shot.url, content=shot.body, headers=shot.headers)
        return response.status_code

    return post


CLIENTS: dict[str, ClientFactory] = {
    "httpx": httpx_default,
    "httpx+tuned-limits": httpx_tuned,
    "httpx-aiohttp": httpx_aiohttp,
    "httpx-aiohttp+tuned-limits": httpx_aiohttp_tuned,
    "aiohttp": aiohttp_bare,
}
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def payload() -> bytes:
    """A delivery-shaped body padded to 1 KiB."""
    event: dict[str, Any] = {
        "type": "obligation.overdue",
        "timestamp": "2026-11-22T09:00:00Z",
        "data": {
            "obligation": {
                "id": "obl_01JD3K5T9Q8W2E4R6Y8U0I2O4P",
                "rule_id": "cin-assessment-45-working-days",
                "status": "overdue",
                "due_at": "2026-11-21T23:59:59Z",
                "escalation_level": 1,
                "note": "",
            },
            "case": {"case_id": "case-000123", "worker_id": "w-042", "team_id": "team-north"},
            "rule": {"id": "cin-assessment-45", "name": "C&F assessment", "source": "WT 2023"},
        },
    }
    size = len(json.dumps(event).encode())
    event["data"]["obligation"]["note"] = "x" * (1024 - size)
    return json.dumps(event).encode()


async def connections_accepted(port: int) -> int:
    """How many connections the receiver has accepted so far, this one included."""
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stats HTTP/1.1\r\nHost: bench\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        count = int(await reader.read(32))
        writer.close()
        await writer.wait_closed()
    return count


async def measure(
    factory: ClientFactory, port: int, requests: int, concurrency: int
) -> dict[str, float]:
    """One run: warm up, then time ``requests`` POSTs with ``concurrency`` in flight."""
    body = payload()
    shot = Shot(
        url=f"http://127.0.0.1:{port}/hooks",
        body=body,
        headers=headers([new_secret()], "msg_bench", int(time.time()), body),
        concurrency=concurrency,
    )
    errors = 0
    async with asyncio.timeout(RUN_TIMEOUT_SECONDS), factory(shot) as post:

        async def worker(jobs: range) -> None:
            nonlocal errors
            for _ in jobs:
                try:
                    if await post() != 200:
                        errors += 1
                except (httpx.HTTPError, aiohttp.ClientError):
                    errors += 1

        async def fan_out(total: int) -> None:
            async with asyncio.TaskGroup() as group:
                for index in range(concurrency):
                    group.create_task(worker(range(index, total, concurrency)))

        await fan_out(2 * concurrency)
        before = await connections_accepted(port)
        cpu, wall = time.process_time(), time.perf_counter()
        await fan_out(requests)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        opened = await connections_accepted(port) - before - 1  # less the stats connection
    return {
        "rps": requests / wall,
        "cpu_us_per_request": cpu / requests * 1e6,
        "connections_opened": opened,
        "errors": errors,
    }


def summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    """Medians over runs, plus the raw requests/s so the spread stays visible."""
    return {
        "median_rps": round(statistics.median(s["rps"] for s in samples)),
        "runs_rps": [round(s["rps"]) for s in samples],
        "median_cpu_us_per_request": round(
            statistics.median(s["cpu_us_per_request"] for s in samples), 1
        ),
        "median_connections_opened": statistics.median(s["connections_opened"] for s in samples),
        "errors": sum(s["errors"] for s in samples),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Start the receiver, then run every loop x client pair round-robin to spread drift."""
    cpus = sorted(os.sched_getaffinity(0))
    receiver_cpu = cpus[-1] if len(cpus) > 1 else None
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = listener.getsockname()[1]
    command = [sys.executable, __file__, "--serve-fd", str(listener.fileno())]
    if receiver_cpu is not None:
        command += ["--cpu", str(receiver_cpu)]
        os.sched_setaffinity(0, set(cpus[:-1]))
    receiver = subprocess.Popen(command, pass_fds=[listener.fileno()])
    listener.close()
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        loop: {name: [] for name in CLIENTS} for loop in LOOPS
    }
    try:
        for run in range(args.runs):
            for loop_name, loop_factory in LOOPS.items():
                for name, factory in CLIENTS.items():
                    with asyncio.Runner(loop_factory=loop_factory) as runner:
                        sample = runner.run(measure(factory, port, args.requests, args.concurrency))
                    samples[loop_name][name].append(sample)
                    print(f"run {run + 1} {loop_name:7} {name:28} {sample}", file=sys.stderr)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    return {
        "requests_per_run": args.requests,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "body_bytes": len(payload()),
        "client_cpus": sorted(os.sched_getaffinity(0)),
        "receiver_cpu": receiver_cpu,
        "versions": {"python": sys.version.split()[0]}
        | {package: metadata.version(package) for package in PACKAGES},
        "results": {
            loop: {name: summarise(runs) for name, runs in by_client.items()}
            for loop, by_client in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fd is not None:
        serve(args.serve_fd, args.cpu)
    else:
        print(json.dumps(bench(args), indent=2))


if __name__ == "__main__":
    main()
