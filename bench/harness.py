"""Shared benchmark plumbing: a throwaway PostgreSQL database and a production-like server."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database for one benchmark run, dropped afterwards."""
    name = f"caseclock_bench_{uuid.uuid4().hex[:10]}"
    subprocess.run(["psql", "-q", f"{PG_ADMIN}/test", "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        yield f"{PG_ADMIN}/{name}"
    finally:
        subprocess.run(
            [
                "psql",
                "-q",
                f"{PG_ADMIN}/test",
                "-c",
                f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            ],
            check=False,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def caseclock_env(pg_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CASECLOCK_DATABASE_URL": pg_url.replace("postgresql://", "postgresql+asyncpg://"),
        "CASECLOCK_RUN_SCHEDULER": "false",
        "CASECLOCK_LOG_FORMAT": "json",
        **extra,
    }


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "caseclock"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def admin_key(env: dict[str, str]) -> str:
    cli(env, "migrate")
    return cli(env, "org", "create", "bench").strip().splitlines()[-1]


def _processes() -> Iterator[tuple[int, int, str, float, float]]:
    """(pid, parent pid, command, own CPU seconds, reaped children's CPU seconds), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        own = (int(fields[11]) + int(fields[12])) / ticks
        reaped = (int(fields[13]) + int(fields[14])) / ticks
        yield int(entry.name), int(fields[1]), head.partition("(")[2], own, reaped


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (uvicorn workers).

    Robust to other load on the machine, unlike wall-clock rates.
    """
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for process, parent, _command, own, _reaped in _processes():
        children.setdefault(parent, []).append(process)
        cpu[process] = own
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += cpu.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


def postgres_cpu_seconds() -> float:
    """CPU of the PostgreSQL server on this machine, which shares its cores with the service;
    backends that exited count through the postmaster, which reaped them."""
    return sum(own + reaped for _, _, command, own, reaped in _processes() if command == "postgres")


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[tuple[str, int]]:
    """Start a server process, wait until it answers /healthz, stop it afterwards."""
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not start: {process.stderr.read().decode()[-2000:]}"
                    if process.stderr
                    else "server did not start"
                )
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
