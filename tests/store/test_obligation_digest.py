"""An obligation row's digest tells the write path whether a derived row differs from the
stored one: it follows the row's values, never which objects hold them, so a case derived
again from its log as read back from the database writes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from service.domain.derive import derive_case
from service.domain.events import Event
from service.domain.rules import builtin_ruleset
from service.store.ingest import obligation_rows

RULESET = builtin_ruleset("england-children")
NOW = datetime(2026, 12, 8, 9, tzinfo=UTC)


def log(worker: str = "W-1") -> list[Event]:
    # Two events on the same day share one instant object, as a mapped snapshot's do.
    day = datetime(2026, 10, 5, tzinfo=UTC)
    return [
        Event("e-1", "referral_received", "C-1", day, worker_id=worker),
        Event("e-2", "contact_made", "C-1", day),
    ]


def digests(events: list[Event]) -> dict[str, str]:
    rows = obligation_rows("org", RULESET, [derive_case("C-1", events, RULESET)], NOW)
    assert rows
    return {ob_id: row["digest"] for ob_id, row in rows.items()}


def test_the_same_log_read_back_with_instants_of_its_own_has_the_same_digests() -> None:
    # The database hands back a new instant for every row, in UTC whatever the zone given.
    plus_one = timezone(timedelta(hours=1))
    read_back = [
        replace(e, occurred_at=e.occurred_at.astimezone(plus_one).astimezone(UTC)) for e in log()
    ]
    assert read_back[0].occurred_at is not read_back[1].occurred_at
    assert digests(read_back) == digests(log())


def test_a_value_that_changes_changes_the_digest() -> None:
    before, after = digests(log("W-1")), digests(log("W-2"))
    assert before.keys() == after.keys()
    assert all(before[ob_id] != after[ob_id] for ob_id in before)
