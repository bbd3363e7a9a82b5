"""`caseclock serve` writes JSON lines only: uvicorn's own start-up, shutdown and error lines
go through the same formatter as caseclock's, so a collector never meets a plain line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from serving import free_port, start_serving
from test_cli import caseclock, environment


def test_every_line_serve_writes_is_a_json_object(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "migrate").code == 0
    port = free_port()
    output = tmp_path / "serve.log"
    with output.open("w") as sink:
        server = start_serving(
            environment(database) | {"CASECLOCK_LOG_FORMAT": "json"}, tmp_path, port, sink
        )
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/rules", timeout=5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    lines = output.read_text().splitlines()
    assert any("Uvicorn running" in line or "Application startup" in line for line in lines)
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert not [line for line in lines if "uvicorn.access" in line], "no line per request"
