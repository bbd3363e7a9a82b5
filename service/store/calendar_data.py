"""Re-derivation when the bank-holiday data changes.

Deadlines depend on the bank-holiday data (the pinned `holidays` package): a new version can
add or move a day off and so move a due date. Each organisation records the version its open
cases were derived with; `caseclock migrate` (and the embedded default's start, which
migrates) re-derives every open case of an organisation whose record differs, one
organisation per transaction, so all replicas, which run the same pinned data, agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from service.domain.calendar import CALENDAR_DATA_VERSION
from service.store.db import SessionFactory, transaction
from service.store.ingest import rederive_open_cases
from service.store.orgs import ruleset_of
from service.store.tables import Org, orgs


async def rederive_for_calendar_data(
    factory: SessionFactory, now: datetime, version: str = CALENDAR_DATA_VERSION
) -> dict[str, int]:
    """Re-derive the open cases of every organisation derived with other calendar data than
    `version`; the cases re-derived, by organisation name."""
    async with transaction(factory) as session:
        stale = list(
            (
                await session.execute(
                    select(orgs.c.id).where(
                        or_(orgs.c.calendar_data.is_(None), orgs.c.calendar_data != version)
                    )
                )
            ).scalars()
        )
    rederived: dict[str, int] = {}
    for org_id in stale:
        async with transaction(factory) as session:
            org = await session.get(Org, org_id, with_for_update=True)
            if org is None or org.calendar_data == version:
                continue  # another replica got there first
            rederived[org.name] = await rederive_open_cases(session, org.id, ruleset_of(org), now)
            await session.execute(
                update(orgs).where(orgs.c.id == org.id).values(calendar_data=version)
            )
    return rederived
