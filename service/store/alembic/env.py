"""Alembic environment: online migrations only, on the connection caseclock hands over."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from service.settings import Settings
from service.store.db import make_engine
from service.store.tables import metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    engine = make_engine(Settings().database_url)
    async with engine.connect() as connection:
        await connection.run_sync(run_on)
        await connection.commit()
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_standalone())
