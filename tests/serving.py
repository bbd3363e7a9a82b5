"""`caseclock serve` as a real process on a free local port, for tests that need one."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_serving(
    env: dict[str, str], cwd: Path, port: int, output: IO[str] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """Start `caseclock serve` and return once it is ready (bounded: 30 seconds)."""
    server = subprocess.Popen(  # noqa: S603 - our own command, with fixed arguments
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, "caseclock serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "caseclock serve did not become ready"
        time.sleep(0.2)
