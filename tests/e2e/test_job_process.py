"""A server killed (SIGKILL) while its import runs in a process of its own leaves no such
process behind: nothing goes on writing once the server is gone."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from test_cli import caseclock, key_in
from test_import_restart import XLSX, poll, serve, workbook


def job_processes_of(parent: int) -> list[int]:
    """The processes `parent` started to run jobs (not the resource tracker), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Alive and not yet a zombie waiting to be reaped."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_server_killed_midway_through_an_import_leaves_no_job_process(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    created = caseclock(database, "org", "create", "kent")
    assert created.code == 0, created.err
    server, client = serve(database, key_in(created.out))
    try:
        posted = client.post(
            "/v1/imports/annex-a?extracted_on=2026-11-20",
            content=workbook(),
            headers={"content-type": XLSX},
        )
        assert posted.status_code == 202, posted.text
        poll(client, posted.headers["location"], lambda s: s["progress"]["cases_done"] > 0)
        children = job_processes_of(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        server.kill()

    assert len(children) == 1
    deadline = time.monotonic() + 10
    while running(children[0]):
        assert time.monotonic() < deadline, "the job's process outlived its server"
        time.sleep(0.05)
