"""An event's content hash is the SHA-256 of its canonical JSON, however many are hashed
together: idempotency compares hashes stored years apart."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from service.domain.events import Event
from service.store.ingest import content_hash, content_hashes

texts = st.text(min_size=1, max_size=12)
data = st.dictionaries(
    texts, st.none() | st.booleans() | st.integers() | texts | st.lists(texts, max_size=3)
)
events = st.builds(
    Event,
    id=texts,
    type=st.sampled_from(["child_visited", "case_allocated", "référé"]),
    case_id=texts,
    occurred_at=st.datetimes(
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001 (given a zone below)
        max_value=datetime(2030, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=1))]),
    ),
    worker_id=st.none() | texts,
    team_id=st.none() | texts,
    data=data,
)


def canonical_hash(event: Event) -> str:
    text = json.dumps(
        [
            event.type,
            event.case_id,
            event.occurred_at.astimezone(UTC).isoformat(),
            event.worker_id,
            event.team_id,
            event.data,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@given(st.lists(events, max_size=8))
def test_hashes_made_together_are_each_events_canonical_hash(batch: list[Event]) -> None:
    assert content_hashes(batch) == [canonical_hash(event) for event in batch]


@given(events)
def test_one_events_hash_is_its_canonical_hash(event: Event) -> None:
    assert content_hash(event) == canonical_hash(event)
