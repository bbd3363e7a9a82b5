"""Scheduled syncs: queue each organisation's SSD sync once a day, at its local time.

Every replica may run it; `claim_scheduled_day` lets one of them queue each day's sync, and
the sync itself runs as a background job (service/jobs/background.py) that one runner holds
at a time. Only the latest day is looked at, so a sync missed while the service was down runs
once, late.
"""

from __future__ import annotations

import logging
from datetime import datetime

from service.store.db import SessionFactory, transaction
from service.store.orgs import rulesets_of
from service.store.sources import (
    claim_scheduled_day,
    queue_sync,
    scheduled_day,
    scheduled_sources,
)

log = logging.getLogger("caseclock.jobs.source_syncs")


async def queue_scheduled_syncs(factory: SessionFactory, *, now: datetime) -> int:
    """Queue the syncs whose time has come today and that no replica has queued; how many
    this run queued."""
    async with transaction(factory) as session:
        scheduled = await scheduled_sources(session)
        rulesets = await rulesets_of(session, {org_id for org_id, _, _ in scheduled})
    queued = 0
    for org_id, schedule, last in scheduled:
        day = scheduled_day(schedule, rulesets[org_id].calendar, now)
        if day is None or (last is not None and last >= day):
            continue
        async with transaction(factory) as session:
            if await claim_scheduled_day(session, org_id, day):
                _, new = await queue_sync(session, org_id=org_id, now=now)
                queued += new
    if queued:
        log.info("queued %d scheduled SSD syncs", queued)
    return queued
