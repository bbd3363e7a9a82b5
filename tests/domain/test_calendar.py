import tomllib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.calendar import (
    BANK_HOLIDAYS_KNOWN_UNTIL,
    CALENDAR_DATA_VERSION,
    LONGEST,
    REGIONS,
    Calendar,
    Duration,
)

ENGLAND = Calendar()
CALENDARS = {region: Calendar(region=region) for region in REGIONS}

ONE_WORKING_DAY = Duration(1, "working_days")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# Duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45 working days", Duration(45, "working_days")),
        ("1 working day", Duration(1, "working_days")),
        ("3 days", Duration(3, "days")),
        ("1 day", Duration(1, "days")),
        ("2 weeks", Duration(2, "weeks")),
        ("1 week", Duration(1, "weeks")),
        ("6 months", Duration(6, "months")),
        ("1 month", Duration(1, "months")),
        ("0 working days", Duration(0, "working_days")),
    ],
)
def test_duration_parses_each_spelling_used_in_guidance(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected


def test_duration_parsing_ignores_case_and_extra_whitespace() -> None:
    assert Duration.parse("  45   Working\tDAYS ") == Duration(45, "working_days")


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (Duration(45, "working_days"), "45 working days"),
        (Duration(1, "working_days"), "1 working day"),
        (Duration(0, "working_days"), "0 working days"),
        (Duration(1, "days"), "1 day"),
        (Duration(2, "weeks"), "2 weeks"),
        (Duration(6, "months"), "6 months"),
        (Duration(1, "months"), "1 month"),
    ],
)
def test_duration_prints_in_canonical_form(duration: Duration, text: str) -> None:
    assert str(duration) == text


@given(
    st.sampled_from(["working_days", "days", "weeks", "months"]).flatmap(
        lambda unit: st.builds(Duration, st.integers(0, LONGEST[unit]), st.just(unit))
    )
)
def test_duration_round_trips_through_its_text(duration: Duration) -> None:
    assert Duration.parse(str(duration)) == duration


@pytest.mark.parametrize("longest", ["120 months", "520 weeks", "3650 days", "2610 working days"])
def test_a_duration_of_about_ten_years_is_accepted(longest: str) -> None:
    assert str(Duration.parse(longest)) == longest


@pytest.mark.parametrize(
    ("too_long", "detail"),
    [
        ("121 months", "121 months is too long: at most 120 months (about ten years)"),
        ("521 weeks", "521 weeks is too long: at most 520 weeks (about ten years)"),
        ("3651 days", "3651 days is too long: at most 3650 days (about ten years)"),
        (
            "2611 working days",
            "2611 working days is too long: at most 2610 working days (about ten years)",
        ),
        ("100000 months", "100000 months is too long: at most 120 months (about ten years)"),
    ],
)
def test_a_duration_longer_than_about_ten_years_is_refused(too_long: str, detail: str) -> None:
    with pytest.raises(ValueError, match="too long") as error:
        Duration.parse(too_long)
    assert str(error.value) == detail


def test_duration_parse_error_names_the_text_and_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="is not a duration") as error:
        Duration.parse("45 workdays")
    assert str(error.value) == (
        "'45 workdays' is not a duration: "
        "expected 'N working days', 'N days', 'N weeks' or 'N months'"
    )


@pytest.mark.parametrize(
    "text", ["", "45", "working days", "-3 days", "3.5 days", "three days", "3 fortnights"]
)
def test_duration_parse_rejects_text_that_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        Duration.parse(text)


def test_duration_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        Duration(-1, "days")


def test_duration_rejects_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unknown duration unit 'fortnights'"):
        Duration(1, "fortnights")  # type: ignore[arg-type]


# Calendar construction


def test_default_calendar_is_england_and_wales_in_london_time() -> None:
    assert ENGLAND.region == "england-and-wales"
    assert ENGLAND.timezone == ZoneInfo("Europe/London")
    assert ENGLAND.closures == frozenset()


def test_unknown_region_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown region 'atlantis'"):
        Calendar(region="atlantis")


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_timezone_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        Calendar(timezone=name)


def test_calendars_with_the_same_settings_are_equal_and_hash_alike() -> None:
    first = Calendar(region="scotland", closures=[date(2026, 12, 24)])
    second = Calendar(region="scotland", closures=(date(2026, 12, 24),))
    assert first == second
    assert hash(first) == hash(second)
    assert first != Calendar(region="scotland")


# Working days


@pytest.mark.parametrize("day", [date(2026, 3, 7), date(2026, 3, 8)])
def test_weekends_are_not_working_days(day: date) -> None:
    assert not ENGLAND.is_working_day(day)


def test_an_ordinary_weekday_is_a_working_day() -> None:
    assert ENGLAND.is_working_day(date(2026, 3, 9))


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 12, 25),
        date(2025, 12, 26),
        date(2026, 1, 1),
        date(2026, 4, 3),
        date(2026, 4, 6),
        date(2026, 5, 4),
        date(2026, 5, 25),
        date(2026, 8, 31),
        date(2026, 12, 25),
    ],
)
def test_england_bank_holidays_are_not_working_days(day: date) -> None:
    assert not ENGLAND.is_working_day(day)


def test_boxing_day_2026_falls_on_saturday_so_monday_28_december_is_the_substitute() -> None:
    assert not ENGLAND.is_working_day(date(2026, 12, 28))
    assert ENGLAND.is_working_day(date(2026, 12, 29))


def test_christmas_2027_falls_on_saturday_so_27_and_28_december_are_substitutes() -> None:
    assert not ENGLAND.is_working_day(date(2027, 12, 27))
    assert not ENGLAND.is_working_day(date(2027, 12, 28))
    assert ENGLAND.is_working_day(date(2027, 12, 29))


def test_wales_has_the_same_bank_holidays_as_england() -> None:
    wales, england = CALENDARS["wales"], CALENDARS["england"]
    year = [date(2026, 1, 1) + timedelta(days=offset) for offset in range(365)]
    assert [wales.is_working_day(day) for day in year] == [
        england.is_working_day(day) for day in year
    ]


def test_2_january_is_a_bank_holiday_in_scotland_but_not_in_england() -> None:
    assert not CALENDARS["scotland"].is_working_day(date(2026, 1, 2))
    assert ENGLAND.is_working_day(date(2026, 1, 2))


def test_easter_monday_is_a_working_day_in_scotland() -> None:
    assert CALENDARS["scotland"].is_working_day(date(2026, 4, 6))


def test_st_andrews_day_2025_falls_on_sunday_so_scotland_takes_monday_1_december() -> None:
    assert not CALENDARS["scotland"].is_working_day(date(2025, 12, 1))
    assert ENGLAND.is_working_day(date(2025, 12, 1))


def test_st_patricks_day_is_a_bank_holiday_in_northern_ireland_only() -> None:
    assert not CALENDARS["northern-ireland"].is_working_day(date(2026, 3, 17))
    assert ENGLAND.is_working_day(date(2026, 3, 17))
    assert CALENDARS["scotland"].is_working_day(date(2026, 3, 17))


@pytest.mark.parametrize("day", [date(2025, 12, 25), date(2026, 4, 3), date(2026, 8, 31)])
def test_region_none_has_no_bank_holidays(day: date) -> None:
    assert CALENDARS["none"].is_working_day(day)


def test_region_none_still_has_weekends_and_closures() -> None:
    calendar = Calendar(region="none", closures=[date(2025, 12, 24)])
    assert not calendar.is_working_day(date(2025, 12, 27))
    assert not calendar.is_working_day(date(2025, 12, 24))


def test_closures_are_not_working_days() -> None:
    calendar = Calendar(closures=[date(2025, 12, 29), date(2025, 12, 30)])
    assert not calendar.is_working_day(date(2025, 12, 29))
    assert not calendar.is_working_day(date(2025, 12, 30))
    assert calendar.is_working_day(date(2025, 12, 31))


def test_closures_push_a_working_day_deadline_back() -> None:
    calendar = Calendar(closures=[date(2025, 12, 29), date(2025, 12, 30)])
    assert calendar.add(date(2025, 12, 24), ONE_WORKING_DAY) == date(2025, 12, 31)


# Adding and subtracting


def test_christmas_eve_referral_decision_is_due_on_29_december() -> None:
    assert ENGLAND.add(date(2025, 12, 24), ONE_WORKING_DAY) == date(2025, 12, 29)


def test_a_deadline_on_29_december_2025_ends_at_midnight_gmt() -> None:
    assert ENGLAND.end_of_day(date(2025, 12, 29)) == utc(2025, 12, 29, 23, 59, 59, 999_999)


def test_friday_before_the_summer_bank_holiday_plus_one_working_day_is_tuesday() -> None:
    assert ENGLAND.add(date(2026, 8, 28), ONE_WORKING_DAY) == date(2026, 9, 1)


def test_a_deadline_on_1_september_2026_ends_an_hour_before_midnight_utc_in_bst() -> None:
    assert ENGLAND.end_of_day(date(2026, 9, 1)) == utc(2026, 9, 1, 22, 59, 59, 999_999)


def test_45_working_days_skip_christmas_and_new_year() -> None:
    # 29 working days to Fri 19 Dec; 22-24 and 29-31 Dec and 2 Jan make 36; then 5-9 and 12-15 Jan.
    assert ENGLAND.add(date(2025, 11, 10), Duration(45, "working_days")) == date(2026, 1, 15)


def test_zero_working_days_is_the_day_itself_even_at_a_weekend() -> None:
    assert ENGLAND.add(date(2025, 12, 27), Duration(0, "working_days")) == date(2025, 12, 27)


def test_working_days_from_a_weekend_count_from_the_next_working_day() -> None:
    assert ENGLAND.add(date(2025, 12, 27), ONE_WORKING_DAY) == date(2025, 12, 29)


def test_days_are_calendar_days_whatever_the_holidays() -> None:
    assert ENGLAND.add(date(2025, 12, 24), Duration(3, "days")) == date(2025, 12, 27)


def test_weeks_are_seven_calendar_days() -> None:
    assert ENGLAND.add(date(2025, 12, 24), Duration(2, "weeks")) == date(2026, 1, 7)


def test_months_keep_the_day_of_the_month() -> None:
    assert ENGLAND.add(date(2026, 1, 15), Duration(6, "months")) == date(2026, 7, 15)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2025, 11, 30), 3, date(2026, 2, 28)),
        (date(2026, 8, 31), 1, date(2026, 9, 30)),
    ],
)
def test_months_clamp_to_the_end_of_a_shorter_month(day: date, months: int, expected: date) -> None:
    assert ENGLAND.add(day, Duration(months, "months")) == expected


def test_one_working_day_before_29_december_2025_is_christmas_eve() -> None:
    assert ENGLAND.subtract(date(2025, 12, 29), ONE_WORKING_DAY) == date(2025, 12, 24)


def test_working_days_before_new_year_reach_back_into_the_previous_year() -> None:
    assert ENGLAND.subtract(date(2026, 1, 2), Duration(4, "working_days")) == date(2025, 12, 24)


def test_subtracting_zero_working_days_is_the_day_itself() -> None:
    assert ENGLAND.subtract(date(2025, 12, 25), Duration(0, "working_days")) == date(2025, 12, 25)


def test_subtracting_days_and_weeks_is_calendar_arithmetic() -> None:
    assert ENGLAND.subtract(date(2026, 1, 7), Duration(2, "weeks")) == date(2025, 12, 24)
    assert ENGLAND.subtract(date(2025, 12, 27), Duration(3, "days")) == date(2025, 12, 24)


def test_subtracting_months_clamps_to_the_end_of_a_shorter_month() -> None:
    assert ENGLAND.subtract(date(2026, 3, 31), Duration(1, "months")) == date(2026, 2, 28)


def test_adding_working_days_beyond_the_last_date_overflows_like_date_arithmetic() -> None:
    with pytest.raises(OverflowError):
        ENGLAND.add(date.max, ONE_WORKING_DAY)


# Counting working days


def test_working_days_between_counts_the_end_but_not_the_start() -> None:
    assert ENGLAND.working_days_between(date(2026, 3, 9), date(2026, 3, 13)) == 4


def test_working_days_between_skips_bank_holidays() -> None:
    # 29, 30, 31 December and 2 January; 1 January is New Year's Day.
    assert ENGLAND.working_days_between(date(2025, 12, 24), date(2026, 1, 2)) == 4


def test_a_whole_year_has_253_working_days_in_england_in_2026() -> None:
    assert ENGLAND.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 253


@pytest.mark.parametrize(
    ("start", "end"), [(date(2026, 3, 9), date(2026, 3, 9)), (date(2026, 3, 13), date(2026, 3, 9))]
)
def test_working_days_between_is_zero_when_end_is_not_after_start(start: date, end: date) -> None:
    assert ENGLAND.working_days_between(start, end) == 0


# Local time


def test_start_and_end_of_the_23_hour_spring_forward_day() -> None:
    day = date(2026, 3, 29)
    assert ENGLAND.start_of_day(day) == utc(2026, 3, 29, 0, 0)
    assert ENGLAND.end_of_day(day) == utc(2026, 3, 29, 22, 59, 59, 999_999)


def test_start_and_end_of_the_25_hour_fall_back_day() -> None:
    day = date(2026, 10, 25)
    assert ENGLAND.start_of_day(day) == utc(2026, 10, 24, 23, 0)
    assert ENGLAND.end_of_day(day) == utc(2026, 10, 25, 23, 59, 59, 999_999)


def test_start_and_end_of_day_are_returned_in_utc() -> None:
    assert ENGLAND.start_of_day(date(2026, 6, 1)).tzinfo is UTC
    assert ENGLAND.end_of_day(date(2026, 6, 1)).tzinfo is UTC


def test_where_dst_skips_midnight_the_day_starts_when_the_clocks_change() -> None:
    # Santiago jumps from 00:00 to 01:00 on 7 September 2025.
    santiago = Calendar(region="none", timezone="America/Santiago")
    assert santiago.start_of_day(date(2025, 9, 7)) == utc(2025, 9, 7, 4, 0)


def test_where_clocks_go_back_at_midnight_the_day_ends_after_the_repeated_hour() -> None:
    # Santiago goes back from 00:00 to 23:00 on the night of 4 April 2026.
    santiago = Calendar(region="none", timezone="America/Santiago")
    assert santiago.end_of_day(date(2026, 4, 4)) == utc(2026, 4, 5, 3, 59, 59, 999_999)


def test_half_past_eleven_utc_on_30_june_is_1_july_in_london() -> None:
    assert ENGLAND.local_date(utc(2026, 6, 30, 23, 30)) == date(2026, 7, 1)


def test_half_past_eleven_utc_in_winter_is_the_same_date_in_london() -> None:
    assert ENGLAND.local_date(utc(2026, 1, 31, 23, 30)) == date(2026, 1, 31)


def test_local_date_accepts_instants_in_any_offset() -> None:
    new_york = timezone(timedelta(hours=-4))
    assert ENGLAND.local_date(datetime(2026, 6, 30, 19, 30, tzinfo=new_york)) == date(2026, 7, 1)


def test_local_date_rejects_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        ENGLAND.local_date(datetime(2026, 6, 30, 23, 30))  # noqa: DTZ001


# Properties

regions = st.sampled_from(sorted(CALENDARS))
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2110, 12, 31))
counts = st.integers(min_value=0, max_value=300)


@given(regions, days, counts)
def test_adding_n_working_days_lands_n_working_days_later(region: str, day: date, n: int) -> None:
    calendar = CALENDARS[region]
    due = calendar.add(day, Duration(n, "working_days"))
    assert calendar.working_days_between(day, due) == n
    if n > 0:
        assert calendar.is_working_day(due)


@given(regions, days, counts)
def test_adding_working_days_matches_counting_day_by_day(region: str, day: date, n: int) -> None:
    calendar = CALENDARS[region]
    expected, remaining = day, n
    while remaining:
        expected += timedelta(days=1)
        remaining -= calendar.is_working_day(expected)
    assert calendar.add(day, Duration(n, "working_days")) == expected


@given(regions, days, counts)
def test_the_days_a_count_skipped_are_every_day_it_did_not_count(
    region: str, day: date, n: int
) -> None:
    calendar = CALENDARS[region]
    end = day + timedelta(days=n)
    days_off, weekend_days = calendar.days_off_between(day, end)
    expected_off, expected_weekend = [], 0
    for offset in range(1, n + 1):
        each = day + timedelta(days=offset)
        if each.weekday() >= 5:
            expected_weekend += 1
        elif not calendar.is_working_day(each):
            expected_off.append(each)
    assert ([d for d, _ in days_off], weekend_days) == (expected_off, expected_weekend)


@given(regions, days, counts)
def test_subtracting_undoes_adding_from_a_working_day(region: str, day: date, n: int) -> None:
    calendar = CALENDARS[region]
    start = calendar.add(day, ONE_WORKING_DAY)
    duration = Duration(n, "working_days")
    assert calendar.subtract(calendar.add(start, duration), duration) == start


# The bank-holiday data


def test_bank_holidays_are_known_to_the_end_of_2100() -> None:
    assert date(2100, 12, 31) == BANK_HOLIDAYS_KNOWN_UNTIL
    # Easter Sunday 2100 is 28 March, so Good Friday is 26 March and Easter Monday 29 March.
    assert not ENGLAND.is_working_day(date(2100, 3, 26))
    assert not ENGLAND.is_working_day(date(2100, 3, 29))


def test_the_calendar_data_version_is_the_holidays_release_the_project_pins() -> None:
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text("utf-8"))["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.startswith("holidays")]

    assert pin.startswith("holidays==")
    assert f"holidays {pin.removeprefix('holidays==')}" == CALENDAR_DATA_VERSION
