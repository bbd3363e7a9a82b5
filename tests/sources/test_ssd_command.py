"""`caseclock source ssd ...` run as a user runs it, on a SQLite file, against an SSD exported
as a folder of CSVs (one per table, SSD column names, as a spreadsheet saves them: a byte
order mark and Windows line endings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLANS = "cppl_cp_plan_id,cppl_person_id,cppl_cp_plan_start_date,cppl_cp_plan_end_date\r\n"
VISITS = "cppv_cp_visit_id,cppv_person_id,cppv_cp_plan_id,cppv_cp_visit_date,cppv_cp_visit_seen\r\n"


def caseclock(database: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASECLOCK_")}
    env |= {
        "CASECLOCK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "CASECLOCK_LOG_FORMAT": "console",
        "CASECLOCK_RUN_SCHEDULER": "false",
    }
    return subprocess.run(  # noqa: S603 - our own command, with fixed arguments
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    folder = tmp_path / "ssd"
    folder.mkdir()
    (folder / "ssd_cp_plans.csv").write_bytes(
        b"\xef\xbb\xbf" + (PLANS + "P1,C1,2026-11-02 00:00:00.000,1900-01-01\r\n").encode()
    )
    (folder / "ssd_cp_visits.csv").write_bytes(
        (VISITS + "V1,C1,P1,2026-11-10 00:00:00.000,Y\r\nV2,C1,-1,2026-11-11,N\r\n").encode()
    )
    return folder


def test_a_folder_of_csvs_is_configured_and_synced_from_the_command_line(
    tmp_path: Path, exported: Path
) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "Council").returncode == 0
    configured = caseclock(database, "source", "ssd", "set", "--path", str(exported))
    assert configured.returncode == 0, configured.stderr
    assert json.loads(configured.stdout)["path"] == str(exported)

    synced = caseclock(database, "source", "ssd", "sync")

    assert synced.returncode == 0, synced.stderr
    assert "ssd_cp_plans: 1 rows, 1 events added" in synced.stdout
    assert "ssd_cp_visits: 2 rows, 2 events added" in synced.stdout
    again = caseclock(database, "source", "ssd", "sync")
    assert "ssd_cp_visits: 2 rows, 0 events added, 0 replaced, 0 voided, 2 unchanged" in (
        again.stdout
    )


def test_a_url_read_from_standard_input_is_shown_without_its_password(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "Council").returncode == 0
    url = "postgresql://reader:s3cret-pw@db.example/la\n"
    configured = caseclock(database, "source", "ssd", "set", "--url", "-", stdin=url)
    shown = caseclock(database, "source", "ssd", "show")
    assert json.loads(shown.stdout)["database_url"] == "postgresql://reader:***@db.example/la"
    assert "s3cret-pw" not in configured.stdout + configured.stderr + shown.stdout
