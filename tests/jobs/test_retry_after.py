"""Reading a receiver's Retry-After header (RFC 9110 section 10.2.3): delay-seconds or an
HTTP date, anything else ignored, and never an exception whatever the receiver sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.jobs.deliver import parse_retry_after

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_delay_seconds_are_read_as_seconds() -> None:
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)


def test_an_http_date_is_read_as_the_time_until_it() -> None:
    assert parse_retry_after("Fri, 20 Nov 2026 12:05:00 GMT", NOW) == timedelta(minutes=5)


def test_an_http_date_in_the_past_means_no_wait() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == timedelta(0)


def test_a_delay_too_long_to_hold_is_read_as_a_very_long_delay() -> None:
    delay = parse_retry_after("100000000000000", NOW)
    assert delay is not None
    assert delay > timedelta(days=365 * 30)


@pytest.mark.parametrize(
    "header", ["", "  ", "\u00b2", "\u0661\u0662", "-5", "1.5", "1e3", "soon", "Mon, 99 Foo 2026"]
)
def test_anything_else_is_ignored(header: str) -> None:
    assert parse_retry_after(header, NOW) is None
