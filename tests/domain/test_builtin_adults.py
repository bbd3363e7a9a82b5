"""The england-adults ruleset against its table in docs/rules.md (Built-in timescales); cases
start Monday 2 March 2026."""

from datetime import UTC, datetime

import pytest
from builders import (
    ADULTS,
    CHILDREN,
    assert_matches_spec_row,
    derive,
    end_of,
    event,
    local,
    of_rule,
    only,
)

from service.domain.events import Event
from service.domain.status import status_at

START = "2026-03-02"
LATER = datetime(2030, 1, 1, tzinfo=UTC)

TABLE = {
    # rule id: (starts on, due, met by, repeat, cancelled by, restart, source must mention)
    "care-plan-review": (
        ["care_plan_agreed"],
        "8 weeks",
        ["care_plan_reviewed"],
        ["12 months"],
        ["case_closed"],
        "supersede",
        (
            "Care Act 2014 statutory guidance 13.32",
            "light-touch review at 6-8 weeks, then at least every 12 months",
        ),
    ),
    "safeguarding-decision": (
        ["safeguarding_concern_received"],
        "2 working days",
        ["s42_decision_made"],
        [],
        ["case_closed"],
        "parallel",
        ("common local standard",),
    ),
    "scheduled-task": (
        ["task_due"],
        "from:data.due_at",
        ["task_completed"],
        [],
        ["case_closed"],
        "parallel",
        ("CMS-defined tasks",),
    ),
}


def test_the_adults_ruleset_has_exactly_the_spec_rule_ids() -> None:
    assert ADULTS.id == "england-adults"
    assert [rule.id for rule in ADULTS.rules] == list(TABLE)


def test_the_adults_ruleset_counts_in_england_and_london_time() -> None:
    assert ADULTS.calendar.region == "england-and-wales"
    assert ADULTS.calendar.timezone.key == "Europe/London"


@pytest.mark.parametrize("rule_id", list(TABLE))
def test_each_adults_rule_matches_its_spec_table_row(rule_id: str) -> None:
    assert_matches_spec_row(ADULTS, rule_id, TABLE[rule_id])
    rule = ADULTS.rule(rule_id)
    assert rule is not None
    assert not rule.scheduled_by


def test_the_scheduled_task_rule_is_the_same_in_both_rulesets() -> None:
    assert ADULTS.rule("scheduled-task") == CHILDREN.rule("scheduled-task")


# care-plan-review


def test_a_care_plan_review_is_due_8_weeks_after_the_plan_is_agreed() -> None:
    plan = event("care_plan_agreed", START)

    review = only(derive([plan], ADULTS), "care-plan-review")

    assert review.opened_by_event == plan.id
    assert review.due_at == end_of("2026-04-27")


def test_a_care_plan_review_held_within_8_weeks_is_met() -> None:
    obligations = derive(
        [event("care_plan_agreed", START), event("care_plan_reviewed", "2026-04-27")], ADULTS
    )

    assert status_at(of_rule(obligations, "care-plan-review")[0], LATER) == "met"


def test_a_care_plan_review_held_after_8_weeks_is_met_late() -> None:
    obligations = derive(
        [event("care_plan_agreed", START), event("care_plan_reviewed", "2026-04-28")], ADULTS
    )

    assert status_at(of_rule(obligations, "care-plan-review")[0], LATER) == "met_late"


def test_care_plan_reviews_then_repeat_12_months_after_each_review() -> None:
    obligations = derive(
        [
            event("care_plan_agreed", START),
            event("care_plan_reviewed", "2026-04-20"),
            event("care_plan_reviewed", "2027-03-31"),
        ],
        ADULTS,
    )

    assert [r.due_at for r in of_rule(obligations, "care-plan-review")] == [
        end_of("2026-04-27"),
        end_of("2027-04-20"),
        end_of("2028-03-31"),
    ]


def test_a_new_care_plan_supersedes_the_open_review_and_restarts_the_8_weeks() -> None:
    obligations = derive(
        [
            event("care_plan_agreed", START, id="plan-1"),
            event("care_plan_reviewed", "2026-04-20"),
            event("care_plan_agreed", "2026-06-01", id="plan-2"),
        ],
        ADULTS,
    )

    met, superseded, fresh = of_rule(obligations, "care-plan-review")

    assert status_at(met, LATER) == "met"
    assert superseded.cancelled_by_event == "plan-2"
    assert superseded.cancelled_at == local("2026-06-01")
    assert (fresh.sequence, fresh.opened_by_event) == (1, "plan-2")
    assert fresh.due_at == end_of("2026-07-27")


def test_closing_the_case_cancels_the_care_plan_review() -> None:
    obligations = derive(
        [event("care_plan_agreed", START), event("case_closed", "2026-03-10")], ADULTS
    )

    assert status_at(only(obligations, "care-plan-review"), LATER) == "cancelled"


# safeguarding-decision


def concern() -> Event:
    return event("safeguarding_concern_received", START)


def test_a_safeguarding_concern_needs_a_section_42_decision_within_2_working_days() -> None:
    decision = only(derive([concern()], ADULTS), "safeguarding-decision")

    assert decision.due_at == end_of("2026-03-04")


def test_a_section_42_decision_on_the_second_working_day_is_met() -> None:
    obligations = derive([concern(), event("s42_decision_made", "2026-03-04")], ADULTS)

    assert status_at(only(obligations, "safeguarding-decision"), LATER) == "met"


def test_a_section_42_decision_on_the_third_working_day_is_met_late() -> None:
    obligations = derive([concern(), event("s42_decision_made", "2026-03-05")], ADULTS)

    assert status_at(only(obligations, "safeguarding-decision"), LATER) == "met_late"


def test_closing_the_case_cancels_the_section_42_decision() -> None:
    obligations = derive([concern(), event("case_closed", "2026-03-03")], ADULTS)

    assert status_at(only(obligations, "safeguarding-decision"), LATER) == "cancelled"


def test_a_section_42_decision_does_not_repeat() -> None:
    obligations = derive([concern(), event("s42_decision_made", "2026-03-03")], ADULTS)

    assert len(of_rule(obligations, "safeguarding-decision")) == 1


def test_a_concern_over_easter_counts_only_working_days() -> None:
    # Thursday 2 April 2026: Good Friday and Easter Monday are bank holidays.
    decision = only(
        derive([event("safeguarding_concern_received", "2026-04-02")], ADULTS),
        "safeguarding-decision",
    )

    assert decision.due_at == end_of("2026-04-08")


# scheduled-task


def test_an_adult_task_is_met_by_completing_that_task_only() -> None:
    obligations = derive(
        [
            event("task_due", START, id="due-a", task_id="A", due_at="2026-03-13"),
            event("task_due", START, id="due-b", task_id="B", due_at="2026-03-13"),
            event("task_completed", "2026-03-16", task_id="B"),
        ],
        ADULTS,
    )

    statuses = {o.opened_by_event: status_at(o, LATER) for o in obligations}

    assert statuses == {"due-a": "overdue", "due-b": "met_late"}


def test_closing_an_adult_case_cancels_every_task() -> None:
    obligations = derive(
        [
            event("task_due", START, id="due-a", task_id="A", due_at="2026-03-13"),
            event("task_due", START, id="due-b", task_id="B", due_at="2026-04-13"),
            event("case_closed", "2026-03-05"),
        ],
        ADULTS,
    )

    assert {status_at(o, LATER) for o in obligations} == {"cancelled"}


def test_childrens_events_open_nothing_in_the_adults_ruleset() -> None:
    obligations = derive(
        [event("referral_received", START), event("child_protection_plan_started", START)], ADULTS
    )

    assert obligations == ()
