"""Engines and sessions: one engine per process, one session (one transaction) per unit of work."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    event,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from service.store.types import UTCDateTime, driver_instant, driver_instant_sqlite

SessionFactory = async_sessionmaker[AsyncSession]
T = TypeVar("T")
# SQLite's limit on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
SQLITE_MAX_PARAMETERS = 32766
# From this many rows a plain insert reaches PostgreSQL by COPY (`BulkInsert`): fewer rows
# are cheaper as one statement than as COPY's extra round trips.
COPY_FROM = 100


def _prepare_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite behave under concurrent async writers.

    WAL lets readers work beside a writer, and BEGIN IMMEDIATE takes the write lock at the
    start of every transaction that may write (read-only sessions begin DEFERRED:
    `make_read_session_factory`), so two writers queue on the busy timeout instead of one
    failing when it upgrades a read lock. synchronous=FULL syncs the WAL at every commit, so
    a commit acknowledged to a client survives a power cut (NORMAL could undo it); group
    commit spreads that cost over the events of a group (docs/operations.md, Durability).
    A cache of up to 64 MiB a connection (the default is 2 MB) keeps the pages of the
    indexes a write touches in memory: an import's obligations went in 2.4 times faster.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


# Every statement planned for the values it runs with and the tables as they are now. asyncpg
# prepares each statement once per connection, and after five runs PostgreSQL may keep one
# generic plan for it: a plan made while the tables were nearly empty, when reading a case by
# organisation alone costs the same as by organisation and case, then serves every later run
# however much the tables have grown (statistics only replace it when ANALYZE runs). Planning
# the write path's short statements costs less than one such plan (docs/operations.md,
# Statistics).
CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs
        )
        _prepare_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_recycle", 1800)
    connect_args = kwargs.pop("connect_args", {})
    kwargs["connect_args"] = {
        **connect_args,
        "server_settings": {**CUSTOM_PLANS, **connect_args.get("server_settings", {})},
    }
    # Parameters are personal data and secrets: errors and logs must never quote them.
    return create_async_engine(url, hide_parameters=True, **kwargs)


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


READ_ONLY = "caseclock_read_only"


def make_read_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions for work that only reads (GET requests, the key lookup).

    On SQLite their transactions begin DEFERRED rather than IMMEDIATE: in WAL mode a reader
    then reads its snapshot beside the one writer, instead of queuing for the write lock
    behind a long write (an import's step, a sweep). On PostgreSQL they are ordinary sessions.
    """
    return make_session_factory(engine.execution_options(**{READ_ONLY: True}))


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits on success and rolls back on error."""
    async with factory() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers: what readiness means by "reachable"."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def dialect_of(session: AsyncSession | Session) -> str:
    return session.get_bind().dialect.name


def upsert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both PostgreSQL and SQLite."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def each_of(dialect: str, query: Select[Any], column: ColumnElement[Any], name: str) -> Select[Any]:
    """`query`'s rows whose `column` is one of the list given as `name` when it runs.

    On PostgreSQL the list is one array parameter (one prepared statement for lists of every
    length) and `query` runs once per value, as an equality on `column` beside the
    organisation's: a LATERAL subquery, which OFFSET 0 keeps from being merged into a join.
    Searching the index that names `column` then costs the planner no more than any other
    plan, whatever its statistics. Given `column = ANY(:list)` instead, it weighs one search
    per value against reading the whole organisation through the index and filtering, and
    chooses the second whenever it reckons an organisation has few rows (no statistics, or
    stale ones): the cost of a write then grows with the organisation (docs/operations.md,
    Statistics).
    """
    if dialect != "postgresql":
        return query.where(column.in_(bindparam(name, expanding=True)))
    keys = (
        func.unnest(bindparam(name, type_=postgresql.ARRAY(column.type)))
        .table_valued("key")
        .render_derived(name="keys")
    )
    found = query.where(column == keys.c.key).offset(literal_column("0")).lateral("found")
    return select(*found.c).select_from(keys).join(found, true())


class DeleteEach:
    """A DELETE of an organisation's rows by each of a list of keys, one equality per key.

    It runs once per key (an executemany, which asyncpg sends as one pipeline), each run an
    equality that the index on (organisation, key) answers; given `key = ANY(:list)`,
    PostgreSQL may read the whole organisation and filter instead (see `each_of`).
    """

    def __init__(self, table: Table, column: str) -> None:
        self.statement = delete(table).where(
            table.c.org_id == bindparam("b_org"), table.c[column] == bindparam("b_key")
        )

    async def execute(self, session: AsyncSession, org_id: str, keys: Sequence[str]) -> None:
        if keys:
            await session.execute(self.statement, [{"b_org": org_id, "b_key": k} for k in keys])


class Prebuilt(Generic[T]):
    """A statement built once per dialect, its values bound when it runs.

    Building a statement and computing its cache key cost about as much CPU as running it
    (0.26 of 0.66 ms for a two-condition SELECT), and the write path runs a dozen per
    transaction.
    """

    def __init__(self, build: Callable[[str], T]) -> None:
        self._build = build
        self._built: dict[str, T] = {}

    def __call__(self, session: AsyncSession | Session) -> T:
        dialect = dialect_of(session)
        found = self._built.get(dialect)
        if found is None:
            found = self._built[dialect] = self._build(dialect)
        return found


def driver_form(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a column's value becomes what the driver is handed (None: as it is).

    SQLAlchemy runs the type's processors for every value of every row, then builds each
    row's parameters again: a third of an import's CPU. Here an instant costs one C call, and
    JSON is written as text by the same encoder SQLAlchemy uses (on PostgreSQL it travels
    as text: see `BulkInsert._unnest`); other types keep their own processors.
    """
    if isinstance(column.type, UTCDateTime):
        return driver_instant_sqlite if dialect.name == "sqlite" else driver_instant
    if isinstance(column.type, JSON):
        return _json_text
    processor: Callable[[Any], Any] | None = column.type.dialect_impl(dialect).bind_processor(
        dialect
    )
    return processor


def _json_text(value: Any) -> str:
    """JSON as text, as json.dumps writes it; the values most rows hold (none, a list of
    instants' text) without starting an encoder, which costs more than the rest of a row."""
    if value is None:
        return "null"
    if type(value) is list and all(type(item) is str for item in value):
        return "[" + ", ".join(map(encode_basestring_ascii, value)) + "]"
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class _DriverInsert:
    """A BulkInsert compiled for one dialect: its SQL around the parameters of one row (or,
    on PostgreSQL, of every row, as arrays) and what each column's values need."""

    head: str
    row: str
    tail: str
    forms: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    returns: bool

    def records(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's values in column order, in the driver's form: taken out of the row in
        one call, and only the columns that need it changed."""
        take = itemgetter(*(name for name, _ in self.forms))
        single = len(self.forms) == 1  # then itemgetter gives the value, not a tuple
        changed = [(at, form) for at, (_, form) in enumerate(self.forms) if form is not None]
        records = []
        for row in rows:
            values = [take(row)] if single else list(take(row))
            for at, form in changed:
                values[at] = form(values[at])
            records.append(tuple(values))
        return records


class BulkInsert:
    """An INSERT of many rows, built once per dialect; `finish` adds ON CONFLICT or RETURNING.

    On PostgreSQL the rows travel as one array per column (`unnest`): one prepared statement
    serves every number of rows, and the server parses a parameter per column, not per value.
    A plain insert (no `finish`) of `COPY_FROM` rows or more goes by binary COPY instead:
    each value is encoded by its column's type, without the checks an array's every element
    costs the driver (the half of a large insert's encoding), and the server reads rows, not
    arrays to unnest. On SQLite they are an executemany, or, with RETURNING (which an
    executemany drops), rows of VALUES in as few statements as SQLite's limit on parameters
    allows. Either way the compiled SQL goes to the driver with the values already in its
    form (`driver_form`).
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        finish: Callable[[Any, str], Any] | None = None,
    ) -> None:
        self._table = table
        self._columns = tuple(columns)
        self._finish = finish
        self._compiled: dict[str, _DriverInsert] = {}

    def _insert(self, dialect: str) -> Any:
        if dialect != "postgresql":
            return upsert(dialect, self._table).values(
                {name: bindparam(name) for name in self._columns}
            )
        return postgresql.insert(self._table).from_select(
            self._columns, select(*(self._unnest(self._table.c[name]) for name in self._columns))
        )

    def _unnest(self, column: ColumnElement[Any]) -> Any:
        """A JSON value may itself be a list, which an array parameter would take for a
        dimension; so JSON travels as text and is cast back."""
        if isinstance(column.type, JSON):
            return cast(func.unnest(bindparam(column.key, type_=postgresql.ARRAY(Text))), JSON)
        return func.unnest(bindparam(column.key, type_=postgresql.ARRAY(column.type)))

    def _compile(self, dialect: Dialect) -> _DriverInsert:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        insert = self._insert(dialect.name)
        if self._finish is not None:
            insert = self._finish(insert, dialect.name)
        compiled = insert.compile(dialect=dialect)
        if list(compiled.positiontup or ()) != list(self._columns):
            raise ValueError(f"{self._table.name}: a bulk insert binds its columns only")
        sql = str(compiled)
        row = "(" + ", ".join("?" for _ in self._columns) + ")"
        head, values, tail = sql.partition(row) if dialect.name == "sqlite" else (sql, "", "")
        if dialect.name == "sqlite" and not values:
            raise ValueError(f"{self._table.name}: no row of parameters in {sql}")
        found = self._compiled[dialect.name] = _DriverInsert(
            head,
            values,
            tail,
            tuple((name, driver_form(self._table.c[name], dialect)) for name in self._columns),
            bool(compiled.effective_returning),
        )
        return found

    async def execute(
        self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]
    ) -> list[Row[Any]]:
        """Insert `rows`; the rows RETURNING gives, if it is asked for."""
        connection = await session.connection()
        insert = self._compile(connection.dialect)
        if connection.dialect.name == "postgresql":
            if self._finish is None and len(rows) >= COPY_FROM:
                await self._copy(connection, insert, rows)
                return []
            arrays = tuple(
                [row[name] for row in rows] if form is None else [form(row[name]) for row in rows]
                for name, form in insert.forms
            )
            result = await connection.exec_driver_sql(insert.head, arrays)
            return list(result.all()) if insert.returns else []
        values = insert.records(rows)
        if not insert.returns:
            await connection.exec_driver_sql(insert.head + insert.row + insert.tail, values)
            return []
        found: list[Row[Any]] = []
        size = SQLITE_MAX_PARAMETERS // len(self._columns)
        for start in range(0, len(values), size):
            part = values[start : start + size]
            sql = insert.head + ", ".join([insert.row] * len(part)) + insert.tail
            result = await connection.exec_driver_sql(sql, tuple(v for row in part for v in row))
            found.extend(result.all())
        return found

    async def _copy(
        self, connection: AsyncConnection, insert: _DriverInsert, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """The rows by COPY, on the session's own connection and so in its transaction (one
        that has run a statement already: the driver's transaction starts with the first)."""
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is None or not driver.is_in_transaction():
            raise RuntimeError("a COPY needs the transaction begun by an earlier statement")
        await driver.copy_records_to_table(
            self._table.name,
            records=insert.records(rows),
            columns=self._columns,
        )


Read = Callable[[AsyncSession], Awaitable[Any]]
MAX_CONNECTIONS_PER_READ = 4


async def gather_reads(factory: SessionFactory, *reads: Read) -> list[Any]:
    """Independent reads at once, each on a connection of its own, in the order given.

    A dashboard is several full counts of the open work; on PostgreSQL they run side by side
    (a few at a time, to leave the pool for others). SQLite starts every transaction with
    the write lock, so there they run one after another in one session.
    """
    bind = factory.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        async with factory() as session:
            return [await read(session) for read in reads]
    slots = asyncio.Semaphore(MAX_CONNECTIONS_PER_READ)

    async def run(read: Read) -> Any:
        async with slots, factory() as session:
            return await read(session)

    return list(await asyncio.gather(*(run(read) for read in reads)))
