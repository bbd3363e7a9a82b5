"""Reading an authority's Standard Safeguarding Dataset: its reporting database, read-only, or
a folder or zip of one CSV per table.

Only the columns service/imports/ssd.py names are selected, never `*`, so no name, date of
birth, address, casenote or JSON column is ever read. A database is read in one read-only
transaction (REPEATABLE READ where the engine offers it), so every table comes from the same
moment of the authority's rebuild.

A failure says what could not be read and the driver's reason, with the password taken out
of it: the URL itself is never in a message.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, column, create_engine, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.imports.ssd import TABLES, Rows, Snapshot, SnapshotError, Table, rows_from_csv
from service.store.sources import SsdSource, scrub

# A CSV export of a large authority's visits runs to hundreds of MiB.
MAX_CSV_BYTES = 2 * 1024 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS = 30


async def read_snapshot(source: SsdSource) -> Snapshot:
    """The tables caseclock reads from the source, as they are now."""
    if source.database_url is not None:
        return await _read_database(source, source.database_url)
    return await asyncio.to_thread(read_files, Path(source.path or ""))


# The database --------------------------------------------------------------------------


def _columns_query(schema: str) -> Any:
    return text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = :schema AND table_name IN :tables"
    ).bindparams(bindparam("tables", expanding=True), schema=schema)


def _selects(
    schema: str, found: Sequence[tuple[str, str]]
) -> list[tuple[Table, tuple[str, ...], Any]]:
    """For each table the schema has, the columns caseclock reads that it has, and their
    SELECT."""
    present: dict[str, set[str]] = {}
    for table_name, column_name in found:
        present.setdefault(str(table_name).lower(), set()).add(str(column_name).lower())
    plans = []
    for spec in TABLES:
        columns = present.get(spec.name)
        if columns is None:
            continue
        picked = tuple(c for c in spec.columns if c in columns)
        source_table = table(spec.name, *(column(c) for c in picked), schema=schema)
        plans.append((spec, picked, select(*source_table.c)))
    return plans


def _url(database_url: str) -> URL:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        # Read on the service's own PostgreSQL driver, whatever the URL names.
        url = url.set(drivername="postgresql+asyncpg")
    return url


async def _read_database(source: SsdSource, database_url: str) -> Snapshot:
    url = _url(database_url)
    try:
        if url.get_backend_name() == "postgresql":
            return await _read_postgresql(url, source.schema)
        return await asyncio.to_thread(_read_sync, url, source.schema)
    except SnapshotError:
        raise
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise SnapshotError(_why(source, exc)) from exc


def _why(source: SsdSource, exc: BaseException) -> str:
    """The driver's reason in one line, without the password."""
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    line = next(iter(str(reason).splitlines()), "") or type(reason).__name__
    url = make_url(source.database_url or "")
    where = f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}/{url.database or ''}"
    return scrub(f"cannot read the SSD at {where} (schema {source.schema}): {line}", source.secret)


async def _read_postgresql(url: URL, schema: str) -> Snapshot:
    engine = create_async_engine(
        url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS}
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            )
            found = (
                await connection.execute(
                    _columns_query(schema), {"tables": [t.name for t in TABLES]}
                )
            ).all()
            tables: dict[str, Rows] = {}
            # The rows are fetched by the driver itself: a million of them come back in a
            # fraction of the time SQLAlchemy's row objects take to build.
            driver: Any = (await connection.get_raw_connection()).driver_connection
            for spec, picked, query in _selects(schema, found):
                sql = str(query.compile(dialect=connection.dialect))
                tables[spec.name] = Rows(picked, await driver.fetch(sql))
            await connection.rollback()
        return Snapshot(tables)
    finally:
        await engine.dispose()


def _read_sync(url: URL, schema: str) -> Snapshot:
    """A database on a driver without asyncio (SQL Server through pyodbc), in a thread."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _snapshot_isolation(connection)
            found = connection.execute(
                _columns_query(schema), {"tables": [t.name for t in TABLES]}
            ).all()
            tables: dict[str, Rows] = {}
            for spec, picked, query in _selects(schema, found):
                tables[spec.name] = Rows(picked, connection.execute(query).all())
            connection.rollback()
        return Snapshot(tables)
    finally:
        engine.dispose()


def _snapshot_isolation(connection: Connection) -> None:
    """SQL Server: one consistent view where the database allows snapshot isolation."""
    try:
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL SNAPSHOT"))
    except DBAPIError:
        connection.rollback()


# Files ---------------------------------------------------------------------------------


def read_files(path: Path) -> Snapshot:
    """A folder or a zip of CSVs, one per table, each named after its table
    (`ssd_cp_visits.csv`); other files are passed over."""
    try:
        if path.is_dir():
            files = {item.name.lower(): item for item in path.iterdir() if item.is_file()}
            data: dict[str, bytes] = {}
            for name, item in _wanted(files).items():
                if item.stat().st_size > MAX_CSV_BYTES:
                    raise SnapshotError(f"{name} is over {MAX_CSV_BYTES // 2**20} MiB")
                data[name] = item.read_bytes()
            return _from_files(data)
        with zipfile.ZipFile(path) as archive:
            members = {
                info.filename.rsplit("/", 1)[-1].lower(): info
                for info in archive.infolist()
                if not info.is_dir()
            }
            data = {}
            for name, info in _wanted(members).items():
                with archive.open(info) as opened:
                    read = opened.read(MAX_CSV_BYTES + 1)
                if len(read) > MAX_CSV_BYTES:
                    raise SnapshotError(f"{name} expands past {MAX_CSV_BYTES // 2**20} MiB")
                data[name] = read
            return _from_files(data)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise SnapshotError(f"cannot read the SSD files at {path.name}: {exc}") from exc


def _wanted(found: dict[str, Any]) -> dict[str, Any]:
    names = {f"{spec.name}.csv" for spec in TABLES}
    return {name: item for name, item in found.items() if name in names}


def _from_files(data: dict[str, bytes]) -> Snapshot:
    tables = {}
    for spec in TABLES:
        found = data.get(f"{spec.name}.csv")
        if found is not None:
            tables[spec.name] = rows_from_csv(spec, found)
    if not tables:
        raise SnapshotError(
            "no SSD table found: name each CSV after its table (ssd_cin_episodes.csv, ...)"
        )
    return Snapshot(tables)
