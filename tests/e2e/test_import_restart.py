"""An import survives its server being killed (SIGKILL) midway: the next server resumes it
from its last committed step and finishes it, and importing the file again creates nothing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from imports.workbooks import annex_a_sheet, build_workbook
from serving import free_port, start_serving
from test_cli import caseclock, environment, key_in

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHILDREN = 8000  # eight chunks of cases


def workbook() -> bytes:
    rows = [
        {"Child Unique ID": f"C{n:05d}", "Date of referral": date(2026, 8, 14)}
        for n in range(CHILDREN)
    ]
    return build_workbook(annex_a_sheet(3, rows))


def serve(database: Path, key: str) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    port = free_port()
    env = environment(database) | {"CASECLOCK_RUN_SCHEDULER": "true"}
    server = start_serving(env, database.parent, port)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    return server, client


def poll(client: httpx.Client, location: str, until: Any, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status: dict[str, Any] = client.get(location).json()
        if until(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def lease_runs_out(database: Path) -> None:
    """What time does to a dead runner's lease, without waiting for it."""
    with sqlite3.connect(database) as connection:
        (held,) = connection.execute("SELECT lease_until FROM jobs").fetchone()
        connection.execute("UPDATE jobs SET lease_until = ?", ("2000" + held[4:],))


def test_an_import_killed_midway_is_finished_by_the_next_server_and_stays_idempotent(
    tmp_path: Path,
) -> None:
    database = tmp_path / "caseclock.db"
    created = caseclock(database, "org", "create", "kent")
    assert created.code == 0, created.err
    key = key_in(created.out)
    headers = {"content-type": XLSX}
    data = workbook()

    server, client = serve(database, key)
    try:
        posted = client.post(
            "/v1/imports/annex-a?extracted_on=2026-11-20", content=data, headers=headers
        )
        assert posted.status_code == 202, posted.text
        location = posted.headers["location"]
        midway = poll(client, location, lambda s: s["progress"]["cases_done"] > 0)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        server.kill()
    assert midway["state"] == "running"
    lease_runs_out(database)

    server, client = serve(database, key)
    try:
        done = poll(client, location, lambda s: s["state"] in ("done", "failed"))
        again = client.post(
            "/v1/imports/annex-a?extracted_on=2026-11-20", content=data, headers=headers
        )
        repeated = poll(client, again.headers["location"], lambda s: s["state"] == "done")
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert done["state"] == "done"
    assert done["progress"]["cases_done"] == CHILDREN
    assert done["report"]["lists"][0]["events_created"] == CHILDREN
    assert repeated["report"]["lists"][0]["events_created"] == 0
    assert repeated["report"]["lists"][0]["events_duplicate"] == CHILDREN
