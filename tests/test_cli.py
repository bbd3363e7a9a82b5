"""The `caseclock` command, run as a user runs it: a subprocess against a SQLite file."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from alembic import command
from scratch_database import empty_database, on_postgresql
from sqlalchemy.engine import Connection

from service.domain.calendar import CALENDAR_DATA_VERSION
from service.domain.rules import builtin_ruleset_text
from service.store.db import make_engine, make_session_factory, transaction
from service.store.migrations import alembic_config, head_revision
from service.store.orgs import create_api_key, list_orgs

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    code: int
    out: str
    err: str


def environment(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASECLOCK_")}
    env["CASECLOCK_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    env["CASECLOCK_LOG_FORMAT"] = "console"
    env["CASECLOCK_RUN_SCHEDULER"] = "false"
    return env


def caseclock(database: Path, *args: str, **settings: str) -> Run:
    result = subprocess.run(  # noqa: S603 - our own command, with fixed arguments
        [sys.executable, "-m", "service.cli", *args],
        env=environment(database) | settings,
        cwd=database.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def one_line_reason(run: Run) -> str:
    """A failed command's reason: a single line on stderr, and no traceback."""
    assert run.code != 0
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert lines, "expected a reason on stderr"
    return lines[-1]


def key_in(output: str) -> str:
    (key,) = [line for line in output.splitlines() if line.startswith("cc_")]
    return key


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "caseclock.db"


# Help


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["org"],
        ["org", "create"],
        ["api-key"],
        ["api-key", "create"],
        ["api-key", "list"],
        ["api-key", "revoke"],
        ["rules"],
        ["rules", "validate"],
        ["check"],
        ["demo"],
        ["import", "annex-a"],
        ["import", "cin-census"],
        ["import", "ssda903"],
        ["source", "ssd", "set"],
        ["source", "ssd", "show"],
        ["source", "ssd", "sync"],
    ],
    ids=lambda c: " ".join(c) or "caseclock",
)
def test_every_command_has_help(database: Path, command: list[str]) -> None:
    run = caseclock(database, *command, "--help")
    assert run.code == 0
    assert run.out.startswith("usage: caseclock")


def test_an_unknown_command_exits_non_zero_with_a_reason(database: Path) -> None:
    reason = one_line_reason(caseclock(database, "frobnicate"))
    assert "frobnicate" in reason


def test_a_missing_required_argument_exits_non_zero_with_a_reason(database: Path) -> None:
    reason = one_line_reason(caseclock(database, "org", "create"))
    assert "name" in reason


def test_a_bad_setting_in_the_environment_is_named_in_one_line(database: Path) -> None:
    reason = one_line_reason(caseclock(database, "migrate", CASECLOCK_PORT="eighty"))
    assert reason.startswith("caseclock: CASECLOCK_PORT:")


def test_a_bootstrap_admin_key_shorter_than_32_characters_stops_serve_in_one_line(
    database: Path,
) -> None:
    short = "cc_" + "k" * 28
    run = caseclock(
        database, "serve", "--port", str(free_port()), CASECLOCK_BOOTSTRAP_ADMIN_KEY=short
    )
    assert len(run.err.strip().splitlines()) == 1
    reason = one_line_reason(run)
    assert reason.startswith("caseclock: CASECLOCK_BOOTSTRAP_ADMIN_KEY: too short")
    assert "32 characters" in reason
    assert short not in run.err


def test_a_bootstrap_admin_key_of_32_characters_is_taken(database: Path) -> None:
    run = caseclock(database, "migrate", CASECLOCK_BOOTSTRAP_ADMIN_KEY="cc_" + "k" * 29)
    assert run.code == 0, run.err


def test_an_unreachable_database_is_reported_in_one_line(database: Path) -> None:
    run = caseclock(
        database,
        "org",
        "create",
        "kent",
        CASECLOCK_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/caseclock",
    )
    assert len(run.err.strip().splitlines()) == 1
    assert one_line_reason(run).startswith("caseclock: cannot reach the database: ")


def test_a_database_file_that_cannot_be_opened_is_reported_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "caseclock.db"
    run = caseclock(
        tmp_path / "unused.db",
        "api-key",
        "list",
        CASECLOCK_DATABASE_URL=f"sqlite+aiosqlite:///{missing}",
    )
    assert len(run.err.strip().splitlines()) == 1
    assert one_line_reason(run) == "caseclock: database error: unable to open database file"


def test_a_database_error_is_one_line_without_the_statement_or_the_driver(
    database: Path,
) -> None:
    caseclock(database, "org", "create", "kent")
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TABLE api_keys")
    run = caseclock(database, "api-key", "list")
    assert len(run.err.strip().splitlines()) == 1
    assert one_line_reason(run) == "caseclock: database error: no such table: api_keys"


# A database not at the code's schema. The embedded SQLite migrates itself, so only a
# PostgreSQL database can be met unmigrated.

needs_postgresql = pytest.mark.skipif(
    not on_postgresql(),
    reason="the embedded SQLite migrates itself; set CASECLOCK_TEST_DATABASE_URL",
)


@pytest.fixture
def unmigrated(tmp_path: Path) -> Iterator[str]:
    with empty_database(tmp_path) as url:
        yield url


@needs_postgresql
@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "{port}"],
        ["org", "create", "kent"],
        ["api-key", "create", "--scope", "read"],
        ["api-key", "list"],
        ["api-key", "revoke", "cc_0123456"],
        ["check"],
        ["demo"],
        ["import", "annex-a", "{file}"],
    ],
    ids=" ".join,
)
def test_every_command_on_an_empty_database_says_to_migrate_in_one_line(
    tmp_path: Path, unmigrated: str, command: list[str]
) -> None:
    workbook = tmp_path / "annex-a.xlsx"
    workbook.write_bytes(b"read only once the database is ready")
    args = [part.format(port=free_port(), file=workbook) for part in command]
    run = caseclock(tmp_path / "unused.db", *args, CASECLOCK_DATABASE_URL=unmigrated)
    assert run.err.strip().splitlines() == [
        f"caseclock: the database schema is at no revision (an empty database), "
        f"this caseclock expects {head_revision()}: run 'caseclock migrate'"
    ]
    assert run.code == 1


@needs_postgresql
def test_a_database_behind_the_code_is_named_with_both_revisions(
    tmp_path: Path, unmigrated: str
) -> None:
    asyncio.run(upgrade_to(unmigrated, "0004_imports"))
    run = caseclock(tmp_path / "unused.db", "api-key", "list", CASECLOCK_DATABASE_URL=unmigrated)
    assert one_line_reason(run) == (
        f"caseclock: the database schema is at 0004_imports, "
        f"this caseclock expects {head_revision()}: run 'caseclock migrate'"
    )


@needs_postgresql
def test_after_migrate_the_commands_work(tmp_path: Path, unmigrated: str) -> None:
    migrated = caseclock(tmp_path / "unused.db", "migrate", CASECLOCK_DATABASE_URL=unmigrated)
    assert migrated.code == 0, migrated.err
    created = caseclock(
        tmp_path / "unused.db", "org", "create", "kent", CASECLOCK_DATABASE_URL=unmigrated
    )
    assert created.code == 0, created.err


async def upgrade_to(url: str, revision: str) -> None:
    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
    finally:
        await engine.dispose()


# migrate, org create, api-key create


def test_migrate_brings_an_empty_database_to_head(database: Path) -> None:
    run = caseclock(database, "migrate")
    assert run.code == 0, run.err
    assert "head" in run.out
    assert database.exists()


def test_migrate_records_the_calendar_data_each_organisation_is_derived_with(
    database: Path,
) -> None:
    assert caseclock(database, "org", "create", "kent").code == 0
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE orgs SET calendar_data = 'holidays 0.1'")
    assert caseclock(database, "migrate").code == 0
    with sqlite3.connect(database) as connection:
        (recorded,) = connection.execute("SELECT calendar_data FROM orgs").fetchone()
    assert recorded == CALENDAR_DATA_VERSION


def test_org_create_prints_an_admin_key_once(database: Path) -> None:
    run = caseclock(database, "org", "create", "kent")
    assert run.code == 0, run.err
    assert "kent" in run.out
    assert len(key_in(run.out)) > 30


def test_org_create_refuses_a_name_already_taken(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    reason = one_line_reason(caseclock(database, "org", "create", "kent"))
    assert "already exists" in reason


def test_org_create_refuses_a_name_longer_than_the_column(database: Path) -> None:
    reason = one_line_reason(caseclock(database, "org", "create", "k" * 201))
    assert "1 to 200 characters" in reason


def test_org_create_refuses_an_unknown_ruleset(database: Path) -> None:
    reason = one_line_reason(
        caseclock(database, "org", "create", "kent", "--ruleset", "wales-children")
    )
    assert "wales-children" in reason


def test_api_key_create_prints_a_key_with_its_scope(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    run = caseclock(database, "api-key", "create", "--scope", "read")
    assert run.code == 0, run.err
    assert "read" in run.out
    assert key_in(run.out).startswith("cc_")


def test_api_key_create_takes_several_scopes(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    run = caseclock(database, "api-key", "create", "--scope", "read,events:write")
    assert run.code == 0, run.err
    assert "events:write read" in run.out


def test_api_key_create_refuses_an_unknown_scope(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    reason = one_line_reason(caseclock(database, "api-key", "create", "--scope", "write"))
    assert "--scope" in reason


def test_api_key_create_without_an_organisation_says_so(database: Path) -> None:
    reason = one_line_reason(caseclock(database, "api-key", "create", "--scope", "read"))
    assert "--org" in reason


def test_api_key_create_needs_org_when_there_are_several(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    caseclock(database, "org", "create", "essex")
    reason = one_line_reason(caseclock(database, "api-key", "create", "--scope", "read"))
    assert "essex" in reason
    assert "kent" in reason
    chosen = caseclock(database, "api-key", "create", "--scope", "read", "--org", "essex")
    assert chosen.code == 0, chosen.err


def test_api_key_list_shows_each_key_by_prefix_and_whether_it_is_revoked(
    database: Path,
) -> None:
    admin = key_in(caseclock(database, "org", "create", "kent").out)
    reader = key_in(caseclock(database, "api-key", "create", "--scope", "read").out)
    caseclock(database, "api-key", "revoke", reader[:10])
    listed = caseclock(database, "api-key", "list")
    assert listed.code == 0, listed.err
    rows = [line.split() for line in listed.out.splitlines()[1:]]
    assert [(r[0], r[-1] == "-") for r in rows] == [(admin[:10], True), (reader[:10], False)]
    assert admin not in listed.out
    assert reader not in listed.out


def test_api_key_list_hides_a_key_short_enough_to_be_its_own_prefix(database: Path) -> None:
    """A bootstrap key set before keys had to be 32 characters may be that short."""
    caseclock(database, "org", "create", "kent")
    asyncio.run(store_key(database, "cc_short"))
    listed = caseclock(database, "api-key", "list")
    assert listed.code == 0, listed.err
    assert "cc_short" not in listed.out
    rows = [line.split()[:4] for line in listed.out.splitlines()[1:]]
    assert ["(too", "short)", "bootstrap", "admin"] in rows


async def store_key(database: Path, plaintext: str) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with transaction(make_session_factory(engine)) as session:
            (org,) = await list_orgs(session)
            await create_api_key(
                session,
                org_id=org.id,
                scopes=frozenset({"admin"}),
                name="bootstrap admin",
                now=datetime(2026, 11, 20, tzinfo=UTC),
                plaintext=plaintext,
            )
    finally:
        await engine.dispose()


def test_api_key_revoke_of_an_unknown_prefix_says_so(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    reason = one_line_reason(caseclock(database, "api-key", "revoke", "cc_nothing"))
    assert "cc_nothing" in reason


def test_api_key_create_refuses_an_unknown_org(database: Path) -> None:
    caseclock(database, "org", "create", "kent")
    reason = one_line_reason(
        caseclock(database, "api-key", "create", "--scope", "read", "--org", "surrey")
    )
    assert "surrey" in reason


# rules validate


def test_rules_validate_accepts_a_good_file(tmp_path: Path, database: Path) -> None:
    path = tmp_path / "children.toml"
    path.write_text(builtin_ruleset_text("england-children"), "utf-8")
    run = caseclock(database, "rules", "validate", str(path))
    assert run.code == 0, run.err
    assert "valid, 11 rules" in run.out


def test_rules_validate_accepts_a_good_json_file(tmp_path: Path, database: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        '{"rules": [{"id": "r", "name": "R", "source": "S", "starts_on": ["referral_received"],'
        ' "due": "2 days", "met_by": ["contact_made"]}]}',
        "utf-8",
    )
    run = caseclock(database, "rules", "validate", str(path))
    assert run.code == 0, run.err
    assert "valid, 1 rules" in run.out


def test_rules_validate_refuses_a_bad_file_naming_each_line(tmp_path: Path, database: Path) -> None:
    text = builtin_ruleset_text("england-children")
    text = text.replace('due = "45 working days"', 'due = "45 workdays"')
    text = text.replace('met_by = ["core_group_held"]', 'met_by = ["core_group_hled"]')
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    lines = text.splitlines()
    due_line = lines.index('due = "45 workdays"') + 1
    met_line = lines.index('met_by = ["core_group_hled"]') + 1

    run = caseclock(database, "rules", "validate", str(path))

    reason = one_line_reason(run)
    assert "not a valid ruleset" in reason
    assert f"{path}:{due_line}: /rules/2/due" in run.err
    assert f"{path}:{met_line}: /rules/4/met_by/0" in run.err


def test_rules_validate_refuses_broken_toml_with_its_line(tmp_path: Path, database: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[calendar]\nregion = "england-and-wales"\n\n[[rules]\n', "utf-8")
    run = caseclock(database, "rules", "validate", str(path))
    one_line_reason(run)
    assert f"{path}:4:" in run.err


def test_rules_validate_refuses_a_missing_file(tmp_path: Path, database: Path) -> None:
    reason = one_line_reason(caseclock(database, "rules", "validate", str(tmp_path / "no.toml")))
    assert "cannot read" in reason


# check, against data posted through `caseclock serve`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    database: Path
    base_url: str
    admin_key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """An organisation, then `caseclock serve` on a free local port for the tests to post to."""
    directory = tmp_path_factory.mktemp("served")
    database = directory / "caseclock.db"
    created = caseclock(database, "org", "create", "kent")
    assert created.code == 0, created.err
    port = free_port()
    log = (directory / "serve.log").open("w")
    server = subprocess.Popen(  # noqa: S603 - our own command, with fixed arguments
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment(database),
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (directory / "serve.log").read_text()
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "caseclock serve did not become ready"
            time.sleep(0.2)
        yield Served(database, base_url, key_in(created.out))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def referral(event_id: str, case_id: str, worker_id: str, team_id: str) -> dict[str, str]:
    return {
        "id": event_id,
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-10-05T10:00:00+01:00",
        "worker_id": worker_id,
        "team_id": team_id,
    }


@pytest.fixture(scope="module")
def seeded(served: Served) -> Served:
    """Two overdue cases for W-Z, one for W-A, and one for W-M that a decision met in time."""
    events = [
        referral("e1", "C-1", "W-A", "T-1"),
        referral("e2", "C-2", "W-Z", "T-2"),
        referral("e3", "C-3", "W-Z", "T-2"),
        referral("e4", "C-4", "W-M", "T-1"),
        {
            "id": "e5",
            "type": "referral_decision_made",
            "case_id": "C-4",
            "occurred_at": "2026-10-05T15:00:00+01:00",
            "data": {"outcome": "no_further_action"},
        },
    ]
    response = httpx.post(
        f"{served.base_url}/v1/events/batch",
        json={"events": events},
        headers={"Authorization": f"Bearer {served.admin_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"created"}
    return served


def test_serve_answers_with_the_api(served: Served) -> None:
    response = httpx.get(
        f"{served.base_url}/v1/rules",
        headers={"Authorization": f"Bearer {served.admin_key}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["id"] == "england-children"


def test_serve_refuses_an_oversized_body_with_a_413_problem(served: Served) -> None:
    response = httpx.post(
        f"{served.base_url}/v1/events",
        content=b"x" * (5 * 1024 * 1024 + 1),
        headers={"Authorization": f"Bearer {served.admin_key}"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_check_prints_the_overdue_table_worst_worker_first(seeded: Served) -> None:
    run = caseclock(seeded.database, "check", "--as-of", "2026-10-19T12:00:00Z")
    assert run.code == 0, run.err
    header, *rows = run.out.strip().splitlines()
    assert header.split()[:5] == ["worker", "team", "case", "rule", "due"]
    table = [row.split() for row in rows]
    assert [(r[0], r[2], r[3]) for r in table] == [
        ("W-Z", "C-2", "referral-decision"),
        ("W-Z", "C-3", "referral-decision"),
        ("W-Z", "C-2", "first-contact"),
        ("W-Z", "C-3", "first-contact"),
        ("W-A", "C-1", "referral-decision"),
        ("W-A", "C-1", "first-contact"),
    ]


def test_check_shows_due_days_and_working_days_overdue(seeded: Served) -> None:
    run = caseclock(seeded.database, "check", "--as-of", "2026-10-19T12:00:00Z")
    rows = {(r.split()[2], r.split()[3]): r.split() for r in run.out.splitlines()[1:]}
    assert rows[("C-1", "referral-decision")][4:] == ["2026-10-06", "9"]
    assert rows[("C-1", "first-contact")][4:] == ["2026-10-08", "7"]


def test_check_with_a_date_means_the_end_of_that_day(seeded: Served) -> None:
    run = caseclock(seeded.database, "check", "--as-of", "2026-10-06")
    assert run.code == 0, run.err
    assert "nothing overdue" in run.out
    later = caseclock(seeded.database, "check", "--as-of", "2026-10-07")
    assert len(later.out.strip().splitlines()) == 1 + 3


def test_check_says_when_nothing_is_overdue(seeded: Served) -> None:
    run = caseclock(seeded.database, "check", "--as-of", "2026-10-05T12:00:00Z")
    assert run.code == 0, run.err
    assert run.out.strip() == "nothing overdue"


def test_check_refuses_a_naive_as_of(seeded: Served) -> None:
    reason = one_line_reason(caseclock(seeded.database, "check", "--as-of", "2026-10-19T12:00"))
    assert "--as-of" in reason


def test_check_on_an_empty_database_says_which_organisation_is_needed(database: Path) -> None:
    reason = one_line_reason(caseclock(database, "check"))
    assert "none yet" in reason


def test_a_read_key_from_the_cli_reads_but_cannot_write(served: Served) -> None:
    created = caseclock(served.database, "api-key", "create", "--scope", "read")
    assert created.code == 0, created.err
    headers = {"Authorization": f"Bearer {key_in(created.out)}"}
    read = httpx.get(f"{served.base_url}/v1/obligations", headers=headers, timeout=10)
    write = httpx.post(
        f"{served.base_url}/v1/events/batch",
        json={"events": [referral("x", "C-X", "W-X", "T-X")]},
        headers=headers,
        timeout=10,
    )
    assert (read.status_code, write.status_code) == (200, 403)


def test_a_key_revoked_from_the_cli_is_refused(served: Served) -> None:
    created = caseclock(served.database, "api-key", "create", "--scope", "read")
    key = key_in(created.out)
    revoked = caseclock(served.database, "api-key", "revoke", key[:10])
    assert revoked.code == 0, revoked.err
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.get(f"{served.base_url}/v1/obligations", headers=headers, timeout=10)
    assert response.status_code == 401


# Demo


def test_demo_seeds_an_organisation_whose_overdue_work_check_reports(database: Path) -> None:
    seeded = caseclock(database, "demo")
    assert seeded.code == 0, seeded.err
    assert "800 cases" in seeded.out
    key_in(seeded.out)
    overdue = caseclock(database, "check", "--org", "demo")
    assert overdue.code == 0, overdue.err
    assert overdue.out.splitlines()[0].split()[:2] == ["worker", "team"]
    assert len(overdue.out.splitlines()) > 10


def annex_a_file(tmp_path: Path) -> Path:
    from imports.workbooks import annex_a_sheet, build_workbook

    rows = [
        {"Child Unique ID": child, "Date of referral": "2026-08-14", "Allocated Worker": "W1"}
        for child in ("C1", "C2")
    ]
    workbook = tmp_path / "annex-a.xlsx"
    workbook.write_bytes(build_workbook(annex_a_sheet(3, rows)))
    return workbook


def test_importing_a_workbook_shows_its_progress_then_prints_the_report(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    workbook = annex_a_file(tmp_path)

    run = caseclock(database, "import", "annex-a", str(workbook), "--extracted-on", "2026-11-20")

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "importing annex-a.xlsx: 0/2 rows, 0/2 cases"
    assert lines[1] == "importing annex-a.xlsx: 2/2 rows, 2/2 cases"
    assert lines[2].startswith("import imp_")
    assert "workbook extracted on 2026-11-20" in lines[2]


def test_importing_a_file_that_is_not_a_workbook_stops_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    not_a_workbook = tmp_path / "annex-a.xlsx"
    not_a_workbook.write_text("Child Unique ID,Date of referral\n")

    run = caseclock(database, "import", "annex-a", str(not_a_workbook))

    assert run.code == 2
    assert one_line_reason(run).startswith(f"caseclock: {not_a_workbook}: not an .xlsx workbook")


CENSUS = (
    '<?xml version="1.0" encoding="utf-8"?><Message><Header><CollectionDetails>'
    "<Collection>CIN</Collection><Year>2024</Year><ReferenceDate>2024-03-31</ReferenceDate>"
    "</CollectionDetails></Header><Children><Child><ChildIdentifiers><LAchildID>C1</LAchildID>"
    "</ChildIdentifiers><CINdetails><CINreferralDate>2023-12-01</CINreferralDate>"
    "<ReferralNFA>0</ReferralNFA><Assessments><AssessmentActualStartDate>2023-12-04"
    "</AssessmentActualStartDate><AssessmentAuthorisationDate>2024-01-31"
    "</AssessmentAuthorisationDate></Assessments></CINdetails></Child></Children></Message>"
)
EPISODES_903 = (
    "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST"
    "\r\nC1,03/04/2023,S,C2,N1,U1,PR1,,,,,\r\n"
)
# The second review is dated after the return's reference date: refused, not believed.
REVIEWS_903 = (
    "CHILD,DOB,REVIEW,REVIEW_CODE\r\nC1,01/01/2015,28/04/2023,PN1\r\n"
    "C1,01/01/2015,01/05/2031,PN1\r\n"
)


def table_row(output: str, first: str) -> list[str]:
    """The first row of the report's tables that starts with `first` (the parts come first)."""
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [first])


def test_importing_a_census_shows_its_progress_then_prints_each_block(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    census = tmp_path / "census.xml"
    census.write_text(CENSUS, encoding="utf-8")

    run = caseclock(database, "import", "cin-census", str(census))

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "importing census.xml: 0/2 rows, 0/1 cases"
    assert lines[1] == "importing census.xml: 2/2 rows, 1/1 cases"
    assert lines[2].startswith("import imp_")
    assert lines[2].endswith(": CIN census to 2024-03-31")
    # part, kind, year to, rows, events created, duplicates, rows left out
    assert table_row(run.out, "Assessments") == [
        "Assessments", "census", "2024-03-31", "1", "2", "0", "0"
    ]  # fmt: skip
    assert "cp-visit" in run.out.split("rules not evaluable from the CIN census:")[1]


def test_importing_the_same_census_again_creates_nothing(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    census = tmp_path / "census.xml"
    census.write_text(CENSUS, encoding="utf-8")
    assert caseclock(database, "import", "cin-census", str(census)).code == 0

    run = caseclock(database, "import", "cin-census", str(census))

    assert run.code == 0, run.err
    assert table_row(run.out, "Assessments")[4:6] == ["0", "2"]


def test_a_census_declaring_entities_stops_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    hostile = tmp_path / "census.xml"
    hostile.write_text(
        CENSUS.replace("<Message>", '<!DOCTYPE Message [<!ENTITY x "x">]><Message>', 1)
    )

    run = caseclock(database, "import", "cin-census", str(hostile))

    assert run.code == 2
    assert one_line_reason(run).startswith(
        "caseclock: census.xml: the file has a document type declaration"
    )


def test_importing_several_return_files_prints_each_file_and_what_was_refused(
    tmp_path: Path,
) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    episodes, reviews = tmp_path / "episodes_2024.csv", tmp_path / "reviews_2024.csv"
    episodes.write_text(EPISODES_903, newline="")
    reviews.write_text(REVIEWS_903, newline="")

    run = caseclock(database, "import", "ssda903", str(episodes), str(reviews))

    assert run.code == 0, run.err
    assert run.out.splitlines()[0].startswith("importing episodes_2024.csv, reviews_2024.csv: ")
    assert "SSDA903 return to 2024-03-31" in run.out
    assert table_row(run.out, "episodes_2024.csv")[1:] == [
        "episodes", "2024-03-31", "1", "2", "0", "0"
    ]  # fmt: skip
    assert table_row(run.out, "reviews_2024.csv")[1:] == [
        "reviews", "2024-03-31", "2", "1", "0", "1"
    ]  # fmt: skip
    refused = run.out.split("refused (not believed; the rest still counts):")[1]
    assert "01/05/2031" in refused


def test_a_return_file_with_no_year_takes_the_year_option(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    episodes = tmp_path / "episodes.csv"
    episodes.write_text(EPISODES_903, newline="")

    run = caseclock(database, "import", "ssda903", str(episodes), "--year", "2024")

    assert run.code == 0, run.err
    assert "SSDA903 return to 2024-03-31" in run.out


def test_return_files_caseclock_does_not_read_stop_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    assert caseclock(database, "org", "create", "kent").code == 0
    header = tmp_path / "header_2024.csv"
    header.write_text("CHILD,SEX,DOB,ETHNIC,UPN\n")

    run = caseclock(database, "import", "ssda903", str(header))

    assert run.code == 2
    assert "no file is one caseclock reads" in one_line_reason(run)
