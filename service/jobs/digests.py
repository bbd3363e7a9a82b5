"""Digest job: raise each subscription's digest when its period's send time has come.

Every replica may run it; the digest's (subscription, team, period) key makes one of them
raise it. Only the latest period is looked at, so a digest missed while the service was down
goes once, late, and is never sent twice; periods before it are not sent (a digest reports
the present, and the later one says the same, newer).
"""

from __future__ import annotations

import logging
from datetime import datetime

from service.domain.digests import due_period
from service.store.db import SessionFactory, transaction
from service.store.digests import digest_subscriptions, raise_digest
from service.store.orgs import rulesets_of

log = logging.getLogger("caseclock.jobs.digests")


async def raise_due_digests(factory: SessionFactory, *, now: datetime, public_url: str) -> int:
    """Raise the digests due by `now` that no replica has raised yet; how many this run did.
    Each is its own short transaction: the key it takes is held only while its figures are
    read."""
    async with transaction(factory) as session:
        subscribed = await digest_subscriptions(session)
        rulesets = await rulesets_of(session, {sub.org_id for sub in subscribed})
    raised = 0
    for subscription in subscribed:
        ruleset = rulesets[subscription.org_id]
        period = due_period(subscription.schedule, ruleset.calendar, now)
        if period is None or period.sends_at < subscription.starts_at:
            continue
        teams: list[str | None] = [*subscription.team_ids] if subscription.team_ids else [None]
        for team_id in teams:
            async with transaction(factory) as session:
                delivery = await raise_digest(
                    session, subscription, team_id, period, ruleset, now, public_url
                )
            raised += delivery is not None
    if raised:
        log.info("raised %d digests", raised)
    return raised
