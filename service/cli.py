"""The `caseclock` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.demo import DemoReport, seed_demo
from service.domain.calendar import CALENDAR_DATA_VERSION
from service.domain.events import parse_day_or_instant
from service.domain.rules import BUILTIN_RULESETS, Ruleset, RulesetInvalid, load_ruleset
from service.domain.status import working_days_overdue
from service.settings import Settings, get_settings
from service.store.calendar_data import rederive_for_calendar_data
from service.store.db import SessionFactory, make_engine, make_session_factory, transaction
from service.store.migrations import SchemaNotCurrent, require_current_schema, upgrade_to_head
from service.store.obligations import overdue_obligations
from service.store.orgs import (
    KEY_CACHE_SECONDS,
    SCOPES,
    api_keys,
    create_api_key,
    create_org,
    hash_key,
    list_orgs,
    org_by_name,
    revoke_api_key,
    ruleset_of,
)
from service.store.statistics import analyze_grown
from service.store.tables import ApiKey, Org, metadata

if TYPE_CHECKING:
    from service.jobs.background import Progress
    from service.store.jobs import Claim

T = TypeVar("T")
ORG_NAME_MAX = 200  # the width of orgs.name
SHORT_KEY = "(too short)"  # listed instead of a key whose prefix would be the whole of it


class CommandError(Exception):
    """A one-line reason to stop, printed without a traceback."""


class DatabaseProblem(CommandError):
    """The database cannot be used as it is: a failure at run time rather than bad input."""


def _now() -> datetime:
    return datetime.now(UTC)


def _on_database(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` on an engine of the configured database; what the database refuses, and a
    database that cannot be reached, stop the command in one line."""

    async def run() -> T:
        engine = make_engine(settings.database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        if settings.is_sqlite:
            _open_sqlite_file(settings.database_url)
        return asyncio.run(run())
    except SchemaNotCurrent as exc:
        raise DatabaseProblem(str(exc)) from exc
    except DBAPIError as exc:
        # The driver's own message; the statement and its parameters are left out.
        raise DatabaseProblem(f"database error: {_first_line(exc.orig or exc)}") from exc
    except sqlite3.Error as exc:
        raise DatabaseProblem(f"database error: {_first_line(exc)}") from exc
    except OSError as exc:
        raise DatabaseProblem(f"cannot reach the database: {_first_line(exc)}") from exc


def _with_database(settings: Settings, work: Callable[[SessionFactory], Awaitable[T]]) -> T:
    """Run `work` with a session factory on a schema at the code's head: the embedded SQLite
    migrates itself first; any other database must have been migrated."""

    async def run(engine: AsyncEngine) -> T:
        if settings.is_sqlite:
            await upgrade_to_head(engine)
        else:
            await require_current_schema(engine)
        return await work(make_session_factory(engine))

    return _on_database(settings, run)


def _open_sqlite_file(url: str) -> None:
    """Open (or create) the SQLite file once before the engine does: aiosqlite reports a file
    it cannot open from a thread that may outlive the event loop, which then prints a traceback
    after the command's one line."""
    path = make_url(url).database
    if path and path != ":memory:":
        sqlite3.connect(path).close()


def _first_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), type(exc).__name__)


def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction."""

    async def in_transaction(factory: SessionFactory) -> T:
        async with transaction(factory) as session:
            return await work(session)

    return _with_database(settings, in_transaction)


async def _pick_org(session: AsyncSession, name: str | None) -> Org:
    if name is not None:
        org = await org_by_name(session, name)
        if org is None:
            raise CommandError(f"no organisation named {name!r}")
        return org
    orgs = await list_orgs(session)
    if len(orgs) != 1:
        names = ", ".join(o.name for o in orgs) or "none yet"
        raise CommandError(f"say which organisation with --org (there are: {names})")
    return orgs[0]


async def _nothing(_factory: SessionFactory) -> None:
    """The work of a command that needs only a database ready for it."""


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # A database the service would refuse at start is refused here, in one line.
    _with_database(settings, _nothing)
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        log_level="info",
        log_config=None,  # the app's logging (service/logs.py) formats uvicorn's lines too
        access_log=False,
        proxy_headers=True,
    )
    return 0


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    async def migrate(engine: AsyncEngine) -> tuple[dict[str, int], list[str]]:
        await upgrade_to_head(engine)
        factory = make_session_factory(engine)
        rederived = await rederive_for_calendar_data(factory, datetime.now(UTC))
        # A migration may have filled or rewritten tables, and an upgrade is when an operator
        # expects the database to be put in order (docs/operations.md, Statistics).
        async with transaction(factory) as session:
            analyzed = await analyze_grown(session, metadata.sorted_tables, growth=0)
        return rederived, analyzed

    rederived, analyzed = _on_database(settings, migrate)
    print("database schema is at head")
    for name, count in rederived.items():
        if count:
            print(f"{name}: {count} open cases re-derived with {CALENDAR_DATA_VERSION}")
    if analyzed:
        print(f"statistics gathered for {', '.join(analyzed)}")
    return 0


def cmd_org_create(args: argparse.Namespace, settings: Settings) -> int:
    if not args.name.strip() or len(args.name) > ORG_NAME_MAX:
        raise CommandError(f"an organisation name is 1 to {ORG_NAME_MAX} characters")

    async def work(session: AsyncSession) -> str:
        if await org_by_name(session, args.name):
            raise CommandError(f"an organisation named {args.name!r} already exists")
        org = await create_org(session, name=args.name, ruleset_id=args.ruleset, now=_now())
        _, key = await create_api_key(
            session, org_id=org.id, scopes=frozenset({"admin"}), name="admin", now=_now()
        )
        return key

    key = _in_session(settings, work)
    print(f"created organisation {args.name!r}; its admin key (shown once):\n{key}")
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    scopes = frozenset(s.strip() for part in args.scope for s in part.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise CommandError(f"--scope takes {', '.join(SCOPES)}; got {', '.join(sorted(scopes))}")

    async def work(session: AsyncSession) -> str:
        org = await _pick_org(session, args.org)
        _, key = await create_api_key(
            session, org_id=org.id, scopes=scopes, name=args.name, now=_now()
        )
        return key

    key = _in_session(settings, work)
    print(f"API key with scopes {' '.join(sorted(scopes))} (shown once):\n{key}")
    return 0


def cmd_key_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[ApiKey]:
        return await api_keys(session, (await _pick_org(session, args.org)).id)

    keys = _in_session(settings, work)
    print(f"{'prefix':<12}{'name':<24}{'scopes':<32}{'created':<27}revoked")
    for key in keys:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-"
        created = key.created_at.isoformat(timespec="seconds")
        print(
            f"{_shown_prefix(key):<12}{key.name[:23]:<24}{key.scopes[:31]:<32}"
            f"{created:<27}{revoked}"
        )
    return 0


def _shown_prefix(key: ApiKey) -> str:
    """The key's prefix, unless the prefix is the whole key: a bootstrap key set before keys
    had to be long could be that short."""
    return SHORT_KEY if hash_key(key.prefix) == key.key_hash else key.prefix


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[ApiKey]:
        org = await _pick_org(session, args.org)
        return await revoke_api_key(session, org.id, args.prefix, _now())

    matched = _in_session(settings, work)
    if not matched:
        raise CommandError(
            f"no live key with prefix {args.prefix!r} (see 'caseclock api-key list')"
        )
    if len(matched) > 1:
        raise CommandError(f"{len(matched)} live keys share prefix {args.prefix!r}; none revoked")
    print(
        f"revoked key {args.prefix} ({matched[0].name}); "
        f"running servers refuse it within {KEY_CACHE_SECONDS:g} seconds"
    )
    return 0


def cmd_rules_validate(args: argparse.Namespace, _settings: Settings) -> int:
    path = Path(args.file)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        ruleset = load_ruleset(text, format="json" if path.suffix == ".json" else "toml")
    except RulesetInvalid as exc:
        for problem in exc.problems:
            where = f"{path}:{problem.line}" if problem.line else str(path)
            print(f"{where}: {problem.pointer or '/'}: {problem.detail}", file=sys.stderr)
        raise CommandError(f"{path} is not a valid ruleset ({len(exc.problems)} errors)") from exc
    print(f"{path}: valid, {len(ruleset.rules)} rules: {', '.join(r.id for r in ruleset.rules)}")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[tuple[str, str, str, str, str, int]]:
        org = await _pick_org(session, args.org)
        ruleset = ruleset_of(org)
        at = _parse_instant(args.as_of, ruleset) if args.as_of else _now()
        table = []
        for stored in await overdue_obligations(session, org.id, at):
            days = working_days_overdue(stored.obligation, at, ruleset.calendar)
            due = ruleset.calendar.local_date(stored.obligation.due_at).isoformat()
            table.append(
                (
                    stored.worker_id or "-",
                    stored.team_id or "-",
                    stored.obligation.case_id,
                    stored.obligation.rule_id,
                    due,
                    days,
                )
            )
        return table

    table = _in_session(settings, work)
    if not table:
        print("nothing overdue")
        return 0
    per_worker: dict[str, int] = {}
    for row in table:
        per_worker[row[0]] = per_worker.get(row[0], 0) + 1
    table.sort(key=lambda r: (-per_worker[r[0]], r[0], -r[5], r[2]))
    header = ("worker", "team", "case", "rule", "due", "working days overdue")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    for line in (header, *table):
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _parse_instant(text: str, ruleset: Ruleset) -> datetime:
    parsed = parse_day_or_instant(text)
    if parsed is None:
        raise CommandError(f"--as-of {text!r}: give RFC 3339 with an offset, or a date")
    if isinstance(parsed, datetime):
        return parsed
    return ruleset.calendar.end_of_day(parsed)


def cmd_import_annex_a(args: argparse.Namespace, settings: Settings) -> int:
    """Import an Annex A workbook and print its report; a file that cannot be read stops it.

    The command runs the import's job itself, showing its progress; if it is stopped midway,
    the service's scheduler resumes the job from its last committed step.
    """
    from service.api.imports import MAX_UPLOAD_BYTES
    from service.imports.annex_a import check_annex_a
    from service.imports.mapping import extraction_day
    from service.imports.report import ImportReport, report_lines
    from service.imports.workbook import WorkbookError
    from service.store.imports import queue_import
    from service.store.jobs import LEASE

    path = Path(args.file)
    try:
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise CommandError(f"{path} is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc

    async def queue(session: AsyncSession) -> Claim:
        org = await _pick_org(session, args.org)
        now = _now()
        try:
            day = extraction_day(args.extracted_on, ruleset_of(org).calendar, now)
        except ValueError as exc:
            raise CommandError(f"--extracted-on {exc}") from exc
        try:
            check_annex_a(data, extracted_on=day)
        except WorkbookError as exc:
            raise CommandError(f"{path}: {exc.detail}") from exc
        return await queue_import(
            session, org_id=org.id, data=data, extracted_on=day, now=now, claimed_until=now + LEASE
        )

    report = _run_import(settings, _in_session(settings, queue), path.name)
    print("\n".join(report_lines(ImportReport.from_json(report))))
    return 0


def _run_import(settings: Settings, claim: Claim, label: str) -> dict[str, Any]:
    """Run a queued import's job here, showing its progress; its report once done."""
    from service.store.imports import import_status

    return _run_job(settings, claim, f"importing {label}", "import", import_status)


def _run_job(
    settings: Settings,
    claim: Claim,
    doing: str,
    noun: str,
    status_of: Callable[[AsyncSession, str, str], Awaitable[dict[str, Any] | None]],
) -> dict[str, Any]:
    """Run a queued job (an import, a sync) here, with its progress on the terminal; its
    report once done, or a problem saying it did not finish."""
    from service.jobs.background import collect_less_often, run_in_thread

    collect_less_often()
    with _progress_display(doing) as show:
        run_in_thread(settings.database_url, claim, _now, threading.Event(), show)

    async def status(session: AsyncSession) -> dict[str, Any] | None:
        return await status_of(session, claim.org_id, claim.id)

    done = _in_session(settings, status) or {}
    if done.get("state") != "done":
        problem = done.get("problem") or {}
        raise DatabaseProblem(
            f"{noun} {claim.id} did not finish: {problem.get('detail', 'it stopped midway')}"
        )
    report: dict[str, Any] = done["report"]
    return report


def _read_files(paths: Sequence[str], limit: int) -> list[tuple[str, bytes]]:
    """Each file's name and bytes; one too large or unreadable stops the command."""
    files = []
    for name in paths:
        path = Path(name)
        try:
            if path.stat().st_size > limit:
                raise CommandError(f"{path} is over {limit // (1024 * 1024)} MiB")
            files.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    return files


def cmd_import_cin_census(args: argparse.Namespace, settings: Settings) -> int:
    """Import a CIN census XML file and print its report; a file that cannot be read stops it."""
    from service.api.imports import MAX_RETURN_BYTES
    from service.imports.cin_census import SOURCE, read_cin_census
    from service.imports.returns import ReturnError, ReturnReport, return_report_lines
    from service.store.imports import queue_import
    from service.store.jobs import LEASE

    ((name, data),) = _read_files([args.file], MAX_RETURN_BYTES)

    async def queue(session: AsyncSession) -> Claim:
        org = await _pick_org(session, args.org)
        now = _now()
        try:
            census = read_cin_census(data, today=ruleset_of(org).calendar.local_date(now))
        except ReturnError as exc:
            raise CommandError(f"{name}: {exc.detail}") from exc
        return await queue_import(
            session,
            org_id=org.id,
            data=data,
            extracted_on=census.reference_date,
            now=now,
            claimed_until=now + LEASE,
            source=SOURCE,
        )

    report = _run_import(settings, _in_session(settings, queue), name)
    print("\n".join(return_report_lines(ReturnReport.from_json(report), "CIN census")))
    return 0


def cmd_import_ssda903(args: argparse.Namespace, settings: Settings) -> int:
    """Import SSDA903 return files (CSVs, or zips of them) and print the report."""
    from service.api.imports import MAX_RETURN_BYTES
    from service.imports.returns import ReturnError, ReturnReport, return_report_lines
    from service.imports.ssda903 import SOURCE, Upload, pack, read_ssda903
    from service.store.imports import queue_import
    from service.store.jobs import LEASE

    uploads = [Upload(name, data) for name, data in _read_files(args.files, MAX_RETURN_BYTES)]

    async def queue(session: AsyncSession) -> Claim:
        org = await _pick_org(session, args.org)
        now = _now()
        today = ruleset_of(org).calendar.local_date(now)
        try:
            returns = read_ssda903(uploads, year=args.year, today=today)
        except ReturnError as exc:
            raise CommandError(exc.detail) from exc
        return await queue_import(
            session,
            org_id=org.id,
            data=pack(uploads),
            extracted_on=returns.reference_date,
            now=now,
            claimed_until=now + LEASE,
            source=SOURCE,
            year=args.year,
        )

    label = ", ".join(upload.name for upload in uploads)
    report = _run_import(settings, _in_session(settings, queue), label)
    print("\n".join(return_report_lines(ReturnReport.from_json(report), "SSDA903 return")))
    return 0


def cmd_source_ssd_set(args: argparse.Namespace, settings: Settings) -> int:
    """Configure the organisation's SSD; prints the settings, the password hidden."""
    from service.imports.ssd import DEFAULT_ROLE_CODES
    from service.store.sources import SourceInvalid, SsdSource, check_source, set_ssd_source

    url = sys.stdin.readline().strip() if args.url == "-" else args.url
    schedule = None if args.schedule == "off" else args.schedule

    async def work(session: AsyncSession) -> dict[str, Any]:
        org = await _pick_org(session, args.org)
        codes = args.role_codes.split(",") if args.role_codes else list(DEFAULT_ROLE_CODES)
        try:
            source = check_source(
                SsdSource(
                    org_id=org.id,
                    database_url=url or None,
                    schema=args.schema,
                    path=args.path,
                    role_codes=tuple(codes),
                    worker_key=args.worker_key,
                    schedule=schedule,
                )
            )
        except SourceInvalid as exc:
            raise CommandError(str(exc)) from exc
        await set_ssd_source(session, source, _now())
        return source.to_json()

    print(json.dumps(_in_session(settings, work), indent=2))
    return 0


def cmd_source_ssd_show(args: argparse.Namespace, settings: Settings) -> int:
    from service.store.sources import get_ssd_source

    async def work(session: AsyncSession) -> dict[str, Any] | None:
        source = await get_ssd_source(session, (await _pick_org(session, args.org)).id)
        return None if source is None else source.to_json()

    shown = _in_session(settings, work)
    if shown is None:
        raise CommandError("no SSD source: configure one with caseclock source ssd set")
    print(json.dumps(shown, indent=2))
    return 0


def cmd_source_ssd_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Sync the SSD now, here, showing progress; prints the report's counts. If stopped
    midway, the service's scheduler resumes the sync from its last committed step."""
    from service.store.jobs import LEASE
    from service.store.sources import get_ssd_source, queue_sync, sync_status

    async def queue(session: AsyncSession) -> Claim:
        org = await _pick_org(session, args.org)
        if await get_ssd_source(session, org.id) is None:
            raise CommandError("no SSD source: configure one with caseclock source ssd set")
        now = _now()
        claim, new = await queue_sync(session, org_id=org.id, now=now, claimed_until=now + LEASE)
        if not new:
            raise CommandError(f"a sync is already queued or running: {claim.id}")
        return claim

    claim = _in_session(settings, queue)
    report = _run_job(settings, claim, "syncing the SSD", "sync", sync_status)
    print(f"sync {claim.id} of the Standard Safeguarding Dataset")
    for item in report["tables"]:
        print(
            f"  {item['table']}: {item['rows']} rows, {item['created']} events added, "
            f"{item['replaced']} replaced, {item['voided']} voided, {item['unchanged']} "
            f"unchanged, {item['rows_rejected']} rows left out"
        )
    print(f"  values refused: {report['rejected_total']}; events voided: {report['voided_total']}")
    for rule in report["rules_not_evaluable"]:
        print(f"  not evaluable: {rule['rule_id']}: {rule['reason']}")
    return 0


@contextmanager
def _progress_display(label: str) -> Iterator[Callable[[Progress], None]]:
    """Show a job's progress: a bar on a terminal, a plain line a step otherwise."""
    if not sys.stdout.isatty():

        def line(progress: Progress) -> None:
            print(
                f"{label}: {progress.rows_done}/{progress.rows_total} rows, "
                f"{progress.cases_done}/{progress.cases_total} cases",
                flush=True,
            )

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        "rows",
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(progress: Progress) -> None:
            bar.update(task, completed=progress.rows_done, total=progress.rows_total)

        yield update


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    async def work(factory: SessionFactory) -> tuple[DemoReport, str | None]:
        key = None
        async with transaction(factory) as session:
            org = await org_by_name(session, args.org)
            if org is None:
                org = await create_org(
                    session, name=args.org, ruleset_id="england-children", now=_now()
                )
                _, key = await create_api_key(
                    session,
                    org_id=org.id,
                    scopes=frozenset({"admin"}),
                    name="demo admin",
                    now=_now(),
                )
        return await seed_demo(factory, org_id=org.id, now=_now()), key

    report, key = _with_database(settings, work)
    print(
        f"organisation {args.org!r}: {report.cases} cases, {report.events} events "
        f"({report.created} new), {report.workers} workers in {report.teams} teams"
    )
    if key:
        print(f"its admin key (shown once; sign in at /dashboard with it):\n{key}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caseclock", description="Statutory deadline tracking for social-care case work."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default CASECLOCK_HOST)")
    serve.add_argument("--port", type=int, help="port (default CASECLOCK_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default CASECLOCK_WORKERS)")
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser("migrate", help="bring the database schema to head").set_defaults(
        handler=cmd_migrate
    )

    org = commands.add_parser("org", help="organisations").add_subparsers(
        dest="org_command", required=True, metavar="COMMAND"
    )
    org_create = org.add_parser("create", help="create an organisation and print its admin key")
    org_create.add_argument("name")
    org_create.add_argument("--ruleset", choices=BUILTIN_RULESETS, default=None)
    org_create.set_defaults(handler=cmd_org_create)

    key = commands.add_parser("api-key", help="API keys").add_subparsers(
        dest="key_command", required=True, metavar="COMMAND"
    )
    key_create = key.add_parser("create", help="create an API key and print it once")
    key_create.add_argument(
        "--scope",
        action="append",
        required=True,
        help=f"one or more of {', '.join(SCOPES)} (repeat or comma-separate)",
    )
    key_create.add_argument("--org", help="organisation name (needed when there are several)")
    key_create.add_argument("--name", default="api key", help="a label for the key")
    key_create.set_defaults(handler=cmd_key_create)
    key_list = key.add_parser("list", help="list an organisation's keys by their shown prefix")
    key_list.add_argument("--org", help="organisation name (needed when there are several)")
    key_list.set_defaults(handler=cmd_key_list)
    key_revoke = key.add_parser("revoke", help="revoke a key, named by its prefix")
    key_revoke.add_argument("prefix", help="the key's first 10 characters, as 'list' shows")
    key_revoke.add_argument("--org", help="organisation name (needed when there are several)")
    key_revoke.set_defaults(handler=cmd_key_revoke)

    rules = commands.add_parser("rules", help="rulesets").add_subparsers(
        dest="rules_command", required=True, metavar="COMMAND"
    )
    validate = rules.add_parser("validate", help="check a ruleset file (TOML or .json)")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_rules_validate)

    check = commands.add_parser("check", help="print overdue obligations, worst worker first")
    check.add_argument("--as-of", help="instant (RFC 3339) or date (end of that day); default now")
    check.add_argument("--org", help="organisation name (needed when there are several)")
    check.set_defaults(handler=cmd_check)

    imports = commands.add_parser("import", help="import files an authority already has")
    import_kinds = imports.add_subparsers(dest="import_command", required=True, metavar="KIND")
    annex_a = import_kinds.add_parser("annex-a", help="import an Ofsted Annex A workbook (.xlsx)")
    annex_a.add_argument("file")
    annex_a.add_argument("--extracted-on", help="the day the workbook was produced; default today")
    annex_a.add_argument("--org", help="organisation name (needed when there are several)")
    annex_a.set_defaults(handler=cmd_import_annex_a)
    census = import_kinds.add_parser("cin-census", help="import a CIN census file (.xml)")
    census.add_argument("file")
    census.add_argument("--org", help="organisation name (needed when there are several)")
    census.set_defaults(handler=cmd_import_cin_census)
    returns = import_kinds.add_parser(
        "ssda903", help="import SSDA903 return files (.csv, or a .zip of them)"
    )
    returns.add_argument("files", nargs="+", metavar="FILE")
    returns.add_argument(
        "--year",
        type=int,
        help="collection year of files whose names give none (2024: the year to 31 March 2024)",
    )
    returns.add_argument("--org", help="organisation name (needed when there are several)")
    returns.set_defaults(handler=cmd_import_ssda903)

    source = commands.add_parser("source", help="sources the organisation syncs from")
    source_kinds = source.add_subparsers(dest="source_kind", required=True, metavar="KIND")
    ssd = source_kinds.add_parser("ssd", help="the Standard Safeguarding Dataset").add_subparsers(
        dest="ssd_command", required=True, metavar="COMMAND"
    )
    ssd_set = ssd.add_parser("set", help="configure where and how the SSD is read")
    place = ssd_set.add_mutually_exclusive_group(required=True)
    place.add_argument(
        "--url",
        help="read-only database URL; '-' reads it from standard input (keeps the "
        "password out of the shell's history)",
    )
    place.add_argument("--path", help="a folder or .zip of one CSV per SSD table")
    ssd_set.add_argument("--schema", default="ssd_development", help="the SSD's schema")
    ssd_set.add_argument("--role-codes", help="involvement roles that allocate a case (CW,...)")
    ssd_set.add_argument(
        "--worker-key",
        default="staff_id",
        choices=("staff_id", "professional_id", "registration_no"),
        help="which ssd_professionals id names a worker",
    )
    ssd_set.add_argument(
        "--schedule", default="05:00", help="local time of the daily sync (HH:MM), or off"
    )
    ssd_set.add_argument("--org", help="organisation name (needed when there are several)")
    ssd_set.set_defaults(handler=cmd_source_ssd_set)
    ssd_show = ssd.add_parser("show", help="print the SSD settings, the password hidden")
    ssd_show.add_argument("--org", help="organisation name (needed when there are several)")
    ssd_show.set_defaults(handler=cmd_source_ssd_show)
    ssd_sync = ssd.add_parser("sync", help="sync the SSD now and print the report")
    ssd_sync.add_argument("--org", help="organisation name (needed when there are several)")
    ssd_sync.set_defaults(handler=cmd_source_ssd_sync)

    demo = commands.add_parser("demo", help="seed a realistic demo caseload for the dashboard")
    demo.add_argument("--org", default="demo", help="organisation to seed (created if missing)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        if getattr(args, "ruleset", "unset") is None:
            args.ruleset = settings.default_ruleset
        code: int = args.handler(args, settings)
    except DatabaseProblem as exc:
        print(f"caseclock: {exc}", file=sys.stderr)
        return 1
    except CommandError as exc:
        print(f"caseclock: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # the settings, read from the environment
        print(f"caseclock: {_settings_problems(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        # One line: database errors carry the SQL and a help link on the lines after.
        first_line = next(iter(str(exc).splitlines()), "")
        print(f"caseclock: {type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1
    return code


def _settings_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"CASECLOCK_{'_'.join(str(p) for p in e['loc']).upper()}: "
        # Our own validators' reasons, without pydantic's "Value error, " before them.
        + (str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"])
        for e in exc.errors()
    )


if __name__ == "__main__":
    sys.exit(main())
