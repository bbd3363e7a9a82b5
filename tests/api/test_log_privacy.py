"""No log line holds a secret or personal data, even when the database refuses the statement
that carried them: statement parameters never reach an error's text or a log.

Each test makes the database itself refuse (a trigger, a renamed column), then searches every
line logged meanwhile, as the JSON formatter writes it, for what the request carried.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from conftest import Tenant
from fastapi import FastAPI
from scratch_database import on_postgresql
from sqlalchemy import text

from service.logs import JsonFormatter
from service.store.db import transaction
from service.store.orgs import create_api_key, hash_key
from service.webhooks.signing import SECRET_PREFIX

PUBLIC_URL = "https://93.184.215.14/caseclock-logs"
LOGGERS = ("", "caseclock", "uvicorn.error", "sqlalchemy")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def logged() -> Iterator[list[str]]:
    handler = Lines()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler.lines
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)


@asynccontextmanager
async def refusing_inserts(app: FastAPI, table: str) -> AsyncIterator[None]:
    """A trigger that makes the database refuse every insert into `table`."""
    name = f"refuse_{table}"
    if app.state.engine.dialect.name == "postgresql":
        create = [
            f"""CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN
                RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$
                LANGUAGE plpgsql""",
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
    else:
        create = [
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = [f"DROP TRIGGER {name}"]
    async with transaction(app.state.session_factory) as session:
        for statement in create:
            await session.execute(text(statement))
    try:
        yield
    finally:
        async with transaction(app.state.session_factory) as session:
            for statement in drop:
                await session.execute(text(statement))


async def test_event_data_is_not_logged_when_its_insert_is_refused(
    app: FastAPI, tenant: Tenant
) -> None:
    marker = f"Mathilde-{uuid.uuid4().hex}"
    event = {
        "id": f"E-{uuid.uuid4().hex[:8]}",
        "type": "referral_received",
        "case_id": "C-1",
        "occurred_at": "2026-11-16T10:00:00Z",
        "data": {"note": marker},
    }
    async with refusing_inserts(app, "events"):
        with logged() as lines:
            response = await tenant.writer.post("/v1/events/batch", json={"events": [event]})
    assert response.status_code == 503
    assert lines, "the fault is logged"
    assert not [line for line in lines if marker in line]


async def test_a_new_webhook_secret_is_not_logged_when_its_insert_is_refused(
    app: FastAPI, tenant: Tenant
) -> None:
    marker = f"desc-{uuid.uuid4().hex}"
    async with refusing_inserts(app, "subscriptions"):
        with logged() as lines:
            response = await tenant.admin.post(
                "/v1/webhooks", json={"url": PUBLIC_URL, "description": marker}
            )
    assert response.status_code == 503
    assert lines
    assert not [line for line in lines if SECRET_PREFIX in line or marker in line]


@pytest.mark.skipif(not on_postgresql(), reason="renames a column under the live pool")
async def test_an_api_key_and_its_hash_are_not_logged_when_its_lookup_fails(
    app: FastAPI, tenant: Tenant
) -> None:
    factory = app.state.session_factory
    async with transaction(factory) as session:
        _, key = await create_api_key(
            session,
            org_id=tenant.org_id,
            scopes=frozenset({"read"}),
            name="fresh",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
    rename = "ALTER TABLE api_keys RENAME COLUMN key_hash TO {}"
    async with transaction(factory) as session:
        await session.execute(text(rename.format("key_hash_moved")))
    try:
        with logged() as lines:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test"
            ) as client:
                response = await client.get("/v1/rules", headers={"Authorization": f"Bearer {key}"})
    finally:
        async with transaction(factory) as session:
            await session.execute(
                text(rename.replace("key_hash TO", "key_hash_moved TO").format("key_hash"))
            )
    assert response.status_code == 503
    assert lines
    assert not [line for line in lines if key in line or hash_key(key) in line]
