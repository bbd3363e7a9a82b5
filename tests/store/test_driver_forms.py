"""Bulk inserts hand the driver values already in its form: exactly what SQLAlchemy's own
processing would have stored, so rows written either way compare and sort alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import JSON, Column
from sqlalchemy.dialects import postgresql, sqlite

from service.store.db import driver_form
from service.store.types import UTCDateTime, driver_instant, driver_instant_sqlite

instants = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 (given a zone below)
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]),
)


@given(instants)
def test_an_instant_is_stored_on_sqlite_as_sqlalchemy_stores_it(value: datetime) -> None:
    dialect = sqlite.dialect()
    processed = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processed is not None
    assert driver_instant_sqlite(value) == processed(value)


@given(instants)
def test_an_instant_is_handed_to_postgresql_as_sqlalchemy_hands_it(value: datetime) -> None:
    assert driver_instant(value) == UTCDateTime().process_bind_param(value, postgresql.dialect())


@pytest.mark.parametrize("form", [driver_instant, driver_instant_sqlite])
def test_a_naive_instant_is_refused(form: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        form(datetime(2026, 11, 20, 9))  # noqa: DTZ001


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=8,
)


@given(json_values)
def test_json_is_written_on_sqlite_as_sqlalchemy_writes_it(value: object) -> None:
    dialect = sqlite.dialect()
    processed = JSON().dialect_impl(dialect).bind_processor(dialect)
    form = driver_form(Column("value", JSON), dialect)
    assert processed is not None
    assert form is not None
    assert form(value) == processed(value)
