"""Schema migrations, run from the application rather than a separate tool."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# The migration scripts ship inside the package, beside this module, so an installed wheel
# migrates with nothing else on the path. (pyproject.toml's [tool.alembic] points the
# `alembic` command of a checkout at the same folder, for writing new revisions.)
SCRIPTS = Path(__file__).resolve().parent / "alembic"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration; with a connection, migrations run on it (see env.py)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def upgrade_to_head(engine: AsyncEngine) -> None:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def schema_is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()


class SchemaNotCurrent(RuntimeError):
    """The database is not at the code's migration head, and will not be migrated implicitly."""


async def require_current_schema(engine: AsyncEngine) -> None:
    """Stop, saying what to do, before anything reads a schema other than the code's."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"the database schema is at {current or 'no revision (an empty database)'}, "
            f"this caseclock expects {head}: run 'caseclock migrate'"
        )
