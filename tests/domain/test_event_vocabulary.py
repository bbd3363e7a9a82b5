from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from service.domain.events import BUILTIN_EVENT_TYPES, check_builtin_data, parse_day_or_instant

CASE_EVENT_TYPES = [
    "referral_received",
    "referral_decision_made",
    "contact_made",
    "child_seen",
    "assessment_started",
    "assessment_completed",
    "strategy_discussion_held",
    "section47_started",
    "section47_completed",
    "icpc_held",
    "child_protection_plan_started",
    "child_protection_plan_ended",
    "core_group_held",
    "cp_review_held",
    "child_visited",
    "became_looked_after",
    "ceased_looked_after",
    "placement_started",
    "cla_review_held",
    "pathway_plan_agreed",
    "pathway_plan_reviewed",
    "care_plan_agreed",
    "care_plan_reviewed",
    "safeguarding_concern_received",
    "s42_decision_made",
    "review_scheduled",
    "task_due",
    "task_completed",
    "case_allocated",
    "case_closed",
    "case_reopened",
]
# docs/rules.md, Why a deadline is late: events about one deadline's clock.
CLOCK_EVENT_TYPES = [
    "delay_reason_recorded",
    "deadline_extended",
    "deadline_paused",
    "deadline_resumed",
]


def test_the_builtin_event_types_are_the_spec_vocabulary_and_the_clock_events() -> None:
    assert frozenset(CASE_EVENT_TYPES + CLOCK_EVENT_TYPES) == BUILTIN_EVENT_TYPES


# Reading a date or an instant from event data


def test_a_plain_date_reads_as_that_day() -> None:
    assert parse_day_or_instant("2026-11-02") == date(2026, 11, 2)


def test_a_datetime_with_z_reads_as_utc() -> None:
    assert parse_day_or_instant("2026-11-02T10:15:00Z") == datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def test_a_datetime_with_an_offset_keeps_its_instant() -> None:
    parsed = parse_day_or_instant("2026-11-02T10:15:00+01:00")

    assert parsed == datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
    assert isinstance(parsed, datetime)
    assert parsed.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-02T10:15:00",
        "2026-W45-1",
        "2026-13-01",
        "02/11/2026",
        "next Tuesday",
        "",
        None,
        20261102,
        datetime(2026, 11, 2, 10, 15),  # noqa: DTZ001 - a naive value is what is being rejected
    ],
)
def test_anything_but_a_plain_date_or_an_instant_with_an_offset_is_unreadable(
    value: object,
) -> None:
    assert parse_day_or_instant(value) is None


def test_date_and_aware_datetime_objects_pass_through() -> None:
    aware = datetime(2026, 11, 2, 10, 15, tzinfo=timezone(timedelta(hours=-5)))

    assert parse_day_or_instant(date(2026, 11, 2)) == date(2026, 11, 2)
    assert parse_day_or_instant(aware) == aware


# The data built-in rules depend on


@pytest.mark.parametrize(
    "outcome", ["assessment", "strategy_discussion", "early_help", "no_further_action"]
)
def test_a_referral_decision_accepts_each_spec_outcome(outcome: str) -> None:
    assert check_builtin_data("referral_decision_made", {"outcome": outcome}) == []


@pytest.mark.parametrize("data", [{}, {"outcome": "refer_on"}, {"outcome": None}])
def test_a_referral_decision_needs_a_spec_outcome(data: dict[str, object]) -> None:
    problems = check_builtin_data("referral_decision_made", data)

    assert [p.key for p in problems] == ["outcome"]


def test_a_section_47_completion_needs_conference_or_no_conference() -> None:
    assert check_builtin_data("section47_completed", {"outcome": "conference"}) == []
    assert check_builtin_data("section47_completed", {"outcome": "no_conference"}) == []
    assert [p.key for p in check_builtin_data("section47_completed", {})] == ["outcome"]


def test_an_icpc_plan_flag_is_optional_but_must_be_a_boolean() -> None:
    assert check_builtin_data("icpc_held", {}) == []
    assert check_builtin_data("icpc_held", {"plan": False}) == []
    assert [p.key for p in check_builtin_data("icpc_held", {"plan": "yes"})] == ["plan"]


def test_a_review_booking_needs_the_review_and_a_readable_day() -> None:
    good = {"review": "cp-review", "scheduled_for": "2026-05-28"}
    naive = {"review": "cp-review", "scheduled_for": "2026-05-28T10:00:00"}

    assert check_builtin_data("review_scheduled", good) == []
    assert [p.key for p in check_builtin_data("review_scheduled", naive)] == ["scheduled_for"]
    assert [p.key for p in check_builtin_data("review_scheduled", {})] == [
        "review",
        "scheduled_for",
    ]


def test_a_task_needs_an_id_and_a_due_date() -> None:
    good = {"task_id": "T-1", "due_at": "2026-05-28T17:00:00+01:00", "title": "Chronology"}

    assert check_builtin_data("task_due", good) == []
    assert [p.key for p in check_builtin_data("task_due", {"task_id": " "})] == [
        "task_id",
        "due_at",
    ]


def test_a_completed_task_must_name_the_task() -> None:
    assert check_builtin_data("task_completed", {"task_id": "T-1"}) == []
    assert [p.key for p in check_builtin_data("task_completed", {"task_id": 5})] == ["task_id"]


def test_a_placement_may_say_it_is_meant_to_last_until_the_child_is_18() -> None:
    assert check_builtin_data("placement_started", {}) == []
    assert check_builtin_data("placement_started", {"long_term": True}) == []
    assert check_builtin_data("placement_started", {"long_term": False}) == []
    assert [p.key for p in check_builtin_data("placement_started", {"long_term": "yes"})] == [
        "long_term"
    ]
    assert [p.key for p in check_builtin_data("placement_started", {"long_term": 1})] == [
        "long_term"
    ]


def test_other_event_types_carry_any_data() -> None:
    assert check_builtin_data("child_visited", {"anything": [1, 2]}) == []


# Dates the working-day calendar can count from


@pytest.mark.parametrize(
    "last", ["2100-12-31", "2100-12-31T23:59:59.999999Z", "2101-01-01T00:30:00+01:00"]
)
def test_a_date_up_to_the_end_of_2100_is_accepted(last: str) -> None:
    assert check_builtin_data("task_due", {"task_id": "T-1", "due_at": last}) == []


@pytest.mark.parametrize(
    "past", ["2101-01-01", "2101-01-01T00:00:00Z", "2100-12-31T23:30:00-01:00", "2999-06-30"]
)
def test_a_date_past_the_end_of_2100_is_refused_naming_its_key(past: str) -> None:
    problems = check_builtin_data("task_due", {"task_id": "T-1", "due_at": past})

    assert [(p.key, p.detail) for p in problems] == [
        (
            "due_at",
            "is after 31 December 2100, "
            "the last day the working-day calendar knows bank holidays for",
        )
    ]


def test_any_data_key_holding_a_date_past_2100_is_refused() -> None:
    data = {"review": "cp-review", "scheduled_for": "2026-12-01", "next_on": "2101-03-01"}

    assert [p.key for p in check_builtin_data("review_scheduled", data)] == ["next_on"]


def test_an_instant_in_year_9999_is_refused_without_overflowing() -> None:
    data = {"due_at": "9999-12-31T23:59:59-01:00", "task_id": "T-1"}

    assert [p.key for p in check_builtin_data("task_due", data)] == ["due_at"]
