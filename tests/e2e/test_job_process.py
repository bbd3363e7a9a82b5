"""A server killed (SIGKILL) while its import runs in a process of its own leaves no such
process behind, nor the fork server it was forked from: nothing goes on writing once the
server is gone."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from test_cli import caseclock, key_in
from test_import_restart import XLSX, poll, serve, workbook


def children_of(parent: int, command_has: bytes) -> list[int]:
    """The processes `parent` started whose command line holds `command_has`, from /proc."""
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
        if int(fields[1]) == parent and command_has in command:
            found.append(int(entry.name))
    return found


def fork_servers_of(server: int) -> list[int]:
    """The fork server `server` started for its jobs (not the resource tracker)."""
    return children_of(server, b"forkserver")


def job_processes_of(server: int) -> list[int]:
    """The processes running `server`'s jobs: forks of its fork server."""
    return [job for fork in fork_servers_of(server) for job in children_of(fork, b"forkserver")]


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
        forks = fork_servers_of(server.pid)
        children = job_processes_of(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        server.kill()

    assert len(forks) == 1
    assert len(children) == 1
    deadline = time.monotonic() + 10
    while running(children[0]) or running(forks[0]):
        assert time.monotonic() < deadline, "the job's process outlived its server"
        time.sleep(0.05)
