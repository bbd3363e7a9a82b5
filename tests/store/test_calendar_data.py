"""When the bank-holiday data changes, `caseclock migrate` re-derives every open case of each
organisation derived with other data, and records the data it derived with."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import Tenant
from fastapi import FastAPI
from sqlalchemy import select, update

from service.domain.calendar import CALENDAR_DATA_VERSION
from service.store.calendar_data import rederive_for_calendar_data
from service.store.db import transaction
from service.store.tables import obligations, orgs

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
# A referral on Fri 28 Aug 2026: the decision (1 working day) is due by the end of Tue 1 Sep,
# Mon 31 Aug being the summer bank holiday (23:59:59.999999 BST is 22:59:59.999999 UTC).
DUE = datetime(2026, 9, 1, 22, 59, 59, 999999, tzinfo=UTC)
AS_IF_NO_HOLIDAY = datetime(2026, 8, 31, 22, 59, 59, 999999, tzinfo=UTC)


async def referred(app: FastAPI, tenant: Tenant, *, derived_with: str) -> None:
    event = {
        "id": "R-1",
        "type": "referral_received",
        "case_id": "C-1",
        "occurred_at": "2026-08-28T10:00:00+01:00",
    }
    assert (await tenant.writer.post("/v1/events", json=event)).status_code == 201
    async with transaction(app.state.session_factory) as session:
        # As if derived with data that did not know the bank holiday (so with another digest).
        await session.execute(
            update(obligations)
            .where(
                obligations.c.org_id == tenant.org_id, obligations.c.rule_id == "referral-decision"
            )
            .values(due_at=AS_IF_NO_HOLIDAY, digest="derived-with-other-data")
        )
        await session.execute(
            update(orgs).where(orgs.c.id == tenant.org_id).values(calendar_data=derived_with)
        )


async def stored(app: FastAPI, tenant: Tenant) -> tuple[datetime, str | None]:
    async with transaction(app.state.session_factory) as session:
        due_at = (
            await session.execute(
                select(obligations.c.due_at).where(
                    obligations.c.org_id == tenant.org_id,
                    obligations.c.rule_id == "referral-decision",
                )
            )
        ).scalar_one()
        version = (
            await session.execute(select(orgs.c.calendar_data).where(orgs.c.id == tenant.org_id))
        ).scalar_one()
    return due_at, version


async def test_an_organisation_derived_with_other_calendar_data_is_derived_again(
    app: FastAPI, tenant: Tenant
) -> None:
    await referred(app, tenant, derived_with="holidays 0.1")
    await rederive_for_calendar_data(app.state.session_factory, NOW)
    assert await stored(app, tenant) == (DUE, CALENDAR_DATA_VERSION)


async def test_an_organisation_derived_with_the_current_data_is_left_alone(
    app: FastAPI, tenant: Tenant
) -> None:
    await referred(app, tenant, derived_with=CALENDAR_DATA_VERSION)
    await rederive_for_calendar_data(app.state.session_factory, NOW)
    assert await stored(app, tenant) == (AS_IF_NO_HOLIDAY, CALENDAR_DATA_VERSION)
