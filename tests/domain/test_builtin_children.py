"""The england-children ruleset against its table in docs/rules.md (Built-in timescales).

Every case starts on Monday 2 March 2026 (GMT); Easter 2026 is 3-6 April and the early May bank
holiday 4 May, so the working-day deadlines below cross real holidays.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from builders import (
    CHILDREN,
    assert_matches_spec_row,
    day,
    derive,
    end_of,
    event,
    local,
    of_rule,
    only,
)

from service.domain.calendar import Duration
from service.domain.derive import Obligation
from service.domain.events import Event
from service.domain.status import status_at

START = "2026-03-02"
LATER = datetime(2030, 1, 1, tzinfo=UTC)

Fact = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One row of the built-in timescales table, as behaviour: what opens it, when it is due,
    what closes it."""

    rule_id: str
    starts_on: Fact
    due_day: str
    met_by: tuple[Fact, ...]
    cancelled_by: tuple[Fact, ...]
    not_cancelled_by: tuple[Fact, ...] = field(default=())


CLOSED: Fact = ("case_closed", {})
PLAN_ENDED: Fact = ("child_protection_plan_ended", {})
CEASED: Fact = ("ceased_looked_after", {})

ROWS = [
    Row(
        "referral-decision",
        ("referral_received", {}),
        "2026-03-03",
        met_by=(("referral_decision_made", {"outcome": "assessment"}),),
        cancelled_by=(CLOSED,),
    ),
    Row(
        "first-contact",
        ("referral_received", {}),
        "2026-03-05",
        met_by=(("contact_made", {}), ("child_seen", {})),
        cancelled_by=(
            CLOSED,
            ("referral_decision_made", {"outcome": "early_help"}),
            ("referral_decision_made", {"outcome": "no_further_action"}),
        ),
        not_cancelled_by=(
            ("referral_decision_made", {"outcome": "assessment"}),
            ("referral_decision_made", {"outcome": "strategy_discussion"}),
        ),
    ),
    Row(
        "assessment-completion",
        ("referral_received", {}),
        "2026-05-07",
        met_by=(("assessment_completed", {}),),
        cancelled_by=(
            CLOSED,
            ("referral_decision_made", {"outcome": "early_help"}),
            ("referral_decision_made", {"outcome": "no_further_action"}),
        ),
        not_cancelled_by=(
            ("referral_decision_made", {"outcome": "assessment"}),
            ("referral_decision_made", {"outcome": "strategy_discussion"}),
        ),
    ),
    Row(
        "initial-cp-conference",
        ("section47_started", {}),
        "2026-03-23",
        met_by=(("icpc_held", {"plan": True}), ("icpc_held", {"plan": False})),
        cancelled_by=(CLOSED, ("section47_completed", {"outcome": "no_conference"})),
        not_cancelled_by=(("section47_completed", {"outcome": "conference"}),),
    ),
    Row(
        "core-group",
        ("child_protection_plan_started", {}),
        "2026-03-16",
        met_by=(("core_group_held", {}),),
        cancelled_by=(CLOSED, PLAN_ENDED),
    ),
    Row(
        "cp-review",
        ("child_protection_plan_started", {}),
        "2026-06-02",
        met_by=(("cp_review_held", {}),),
        cancelled_by=(CLOSED, PLAN_ENDED),
    ),
    Row(
        "cp-visit",
        ("child_protection_plan_started", {}),
        "2026-03-16",
        met_by=(("child_visited", {}),),
        cancelled_by=(CLOSED, PLAN_ENDED),
    ),
    Row(
        "cla-review",
        ("became_looked_after", {}),
        "2026-03-30",
        met_by=(("cla_review_held", {}),),
        cancelled_by=(CLOSED, CEASED),
    ),
    Row(
        "cla-visit",
        ("placement_started", {}),
        "2026-03-09",
        met_by=(("child_visited", {}),),
        cancelled_by=(CLOSED, CEASED),
    ),
    Row(
        "pathway-plan-review",
        ("pathway_plan_agreed", {}),
        "2026-09-02",
        met_by=(("pathway_plan_reviewed", {}),),
        cancelled_by=(CLOSED,),
        not_cancelled_by=(CEASED,),
    ),
    Row(
        "scheduled-task",
        ("task_due", {"task_id": "T-1", "due_at": "2026-03-20", "title": "Chronology"}),
        "2026-03-20",
        met_by=(("task_completed", {"task_id": "T-1"}),),
        cancelled_by=(CLOSED,),
    ),
]
BY_ID = {row.rule_id: row for row in ROWS}
REPEATING = {"cp-review", "cp-visit", "cla-review", "cla-visit", "pathway-plan-review"}


def fact(facts: Fact, when: str | datetime, **extra: Any) -> Event:
    event_type, data = facts
    return event(event_type, when, **data, **extra)


def opened(row: Row) -> Event:
    return fact(row.starts_on, START)


def ids(rows: list[Row]) -> list[str]:
    return [row.rule_id for row in rows]


def with_each(attribute: str) -> list[Any]:
    return [
        pytest.param(
            row, item, id=f"{row.rule_id}-{item[0]}-{'-'.join(map(str, item[1].values()))}"
        )
        for row in ROWS
        for item in getattr(row, attribute)
    ]


# The contract table itself: changing a timescale in the TOML must fail here.

TABLE = {
    # rule id: (starts on, due, met by, repeat, cancelled by, restart, source must mention)
    "referral-decision": (
        [{"type": "referral_received", "unless": {"source": ["annex-a", "cin-census", "ssd"]}}],
        "1 working day",
        ["referral_decision_made"],
        [],
        ["case_closed"],
        "parallel",
        ("Working Together", "2023", "one working day"),
    ),
    "first-contact": (
        [{"type": "referral_received", "unless": {"source": ["annex-a", "cin-census", "ssd"]}}],
        "3 working days",
        ["contact_made", "child_seen"],
        [],
        [
            "case_closed",
            {
                "type": "referral_decision_made",
                "where": {"outcome": ["early_help", "no_further_action"]},
            },
        ],
        "parallel",
        ("local practice standard", "configurable"),
    ),
    "assessment-completion": (
        ["referral_received"],
        "45 working days",
        ["assessment_completed"],
        [],
        [
            "case_closed",
            {
                "type": "referral_decision_made",
                "where": {"outcome": ["early_help", "no_further_action"]},
            },
        ],
        "parallel",
        ("Working Together", "2023", "45 working days from referral"),
    ),
    "initial-cp-conference": (
        ["section47_started"],
        "15 working days",
        ["icpc_held"],
        [],
        [{"type": "section47_completed", "where": {"outcome": ["no_conference"]}}, "case_closed"],
        "parallel",
        ("Working Together", "2023", "ICPC within 15 working days of the strategy discussion"),
    ),
    "core-group": (
        [
            {
                "type": "child_protection_plan_started",
                "unless": {"source": ["annex-a", "cin-census", "ssd"]},
            }
        ],
        "10 working days",
        ["core_group_held"],
        [],
        ["child_protection_plan_ended", "case_closed"],
        "parallel",
        ("Working Together", "2023"),
    ),
    "cp-review": (
        ["child_protection_plan_started"],
        "3 months",
        ["cp_review_held"],
        ["6 months"],
        ["child_protection_plan_ended", "case_closed"],
        "parallel",
        ("Working Together", "2023", "first review within 3 months, then at most 6-monthly"),
    ),
    "cp-visit": (
        [{"type": "child_protection_plan_started", "unless": {"source": ["cin-census"]}}],
        "10 working days",
        [{"type": "child_visited", "unless": {"seen": [False]}}],
        ["10 working days"],
        ["child_protection_plan_ended", "case_closed"],
        "parallel",
        ("common local standard",),
    ),
    "cla-review": (
        ["became_looked_after"],
        "20 working days",
        ["cla_review_held"],
        ["3 months", "6 months"],
        ["ceased_looked_after", "case_closed"],
        "parallel",
        ("Care Planning, Placement and Case Review (England) Regulations 2010", "reg. 33"),
    ),
    "cla-visit": (
        [{"type": "placement_started", "unless": {"source": ["ssda903"]}}],
        "1 week",
        [{"type": "child_visited", "unless": {"seen": [False]}}],
        ["6 weeks"],
        ["ceased_looked_after", "case_closed"],
        "supersede",
        ("Care Planning, Placement and Case Review (England) Regulations 2010", "reg. 28"),
    ),
    "pathway-plan-review": (
        [
            "pathway_plan_agreed",
            {"type": "pathway_plan_reviewed", "where": {"source": ["annex-a"]}},
        ],
        "6 months",
        ["pathway_plan_reviewed"],
        ["6 months"],
        ["case_closed"],
        "parallel",
        ("Care Leavers (England) Regulations 2010",),
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


def test_the_children_ruleset_has_exactly_the_spec_rule_ids() -> None:
    assert [rule.id for rule in CHILDREN.rules] == list(TABLE)


def test_the_children_ruleset_is_named_and_counts_in_england_and_london_time() -> None:
    assert CHILDREN.id == "england-children"
    assert CHILDREN.calendar.region == "england-and-wales"
    assert CHILDREN.calendar.timezone.key == "Europe/London"


def test_the_children_ruleset_adds_no_event_types() -> None:
    assert CHILDREN.event_types == frozenset()


@pytest.mark.parametrize("rule_id", list(TABLE))
def test_each_children_rule_matches_its_spec_table_row(rule_id: str) -> None:
    assert_matches_spec_row(CHILDREN, rule_id, TABLE[rule_id])


def test_only_the_scheduled_task_rule_correlates_on_task_id() -> None:
    correlated = {rule.id: rule.correlate_on for rule in CHILDREN.rules if rule.correlate_on}

    assert correlated == {"scheduled-task": "task_id"}


@pytest.mark.parametrize("rule_id", ["cp-review", "cla-review"])
def test_reviews_are_scheduled_by_review_scheduled_10_working_days_ahead(rule_id: str) -> None:
    rule = CHILDREN.rule(rule_id)

    assert rule is not None
    assert [m.to_json() for m in rule.scheduled_by] == ["review_scheduled"]
    assert rule.schedule_before == Duration(10, "working_days")


def test_only_the_reviews_are_scheduled() -> None:
    scheduled = {rule.id for rule in CHILDREN.rules if rule.scheduled_by}

    assert scheduled == {"cp-review", "cla-review"}


# Each rule's behaviour


@pytest.mark.parametrize("row", ROWS, ids=ids(ROWS))
def test_each_rule_opens_on_its_start_event_due_at_the_end_of_the_due_day(row: Row) -> None:
    start = opened(row)

    obligation = only(derive([start]), row.rule_id)

    assert obligation.opened_at == start.occurred_at
    assert obligation.opened_by_event == start.id
    assert obligation.sequence == 1
    assert obligation.due_at == end_of(row.due_day)
    assert status_at(obligation, local(START, "09:00")) == "upcoming"


@pytest.mark.parametrize(("row", "met_by"), with_each("met_by"))
def test_each_rule_is_met_on_time_by_each_met_by_event_on_the_due_day(
    row: Row, met_by: Fact
) -> None:
    obligations = derive([opened(row), fact(met_by, local(row.due_day, "23:59"))])

    obligation = of_rule(obligations, row.rule_id)[0]

    assert obligation.met_at == local(row.due_day, "23:59")
    assert status_at(obligation, LATER) == "met"


@pytest.mark.parametrize("row", ROWS, ids=ids(ROWS))
def test_each_rule_is_met_late_by_its_met_by_event_the_day_after_it_is_due(row: Row) -> None:
    the_day_after = (day(row.due_day) + timedelta(days=1)).isoformat()
    late = fact(row.met_by[0], local(the_day_after, "00:00"))

    obligation = of_rule(derive([opened(row), late]), row.rule_id)[0]

    assert obligation.met_at == late.occurred_at
    assert status_at(obligation, LATER) == "met_late"


@pytest.mark.parametrize(("row", "cancelled_by"), with_each("cancelled_by"))
def test_each_rule_is_cancelled_by_each_of_its_cancelling_events(
    row: Row, cancelled_by: Fact
) -> None:
    cancelling = fact(cancelled_by, "2026-03-03")

    obligation = only(derive([opened(row), cancelling]), row.rule_id)

    assert obligation.cancelled_at == cancelling.occurred_at
    assert obligation.cancelled_by_event == cancelling.id
    assert status_at(obligation, LATER) == "cancelled"


@pytest.mark.parametrize(("row", "other"), with_each("not_cancelled_by"))
def test_other_outcomes_of_a_cancelling_event_type_leave_the_rule_open(
    row: Row, other: Fact
) -> None:
    obligation = only(derive([opened(row), fact(other, "2026-03-03")]), row.rule_id)

    assert obligation.closed_at is None


NOT_REPEATING = [row for row in ROWS if row.rule_id not in REPEATING]


@pytest.mark.parametrize("row", NOT_REPEATING, ids=ids(NOT_REPEATING))
def test_a_rule_without_repeat_opens_nothing_after_it_is_met(row: Row) -> None:
    obligations = derive([opened(row), fact(row.met_by[0], "2026-03-03")])

    assert len(of_rule(obligations, row.rule_id)) == 1


# Repeats


def test_cp_review_is_due_3_months_after_the_plan_then_6_months_after_each_review() -> None:
    obligations = derive(
        [
            event("child_protection_plan_started", "2026-03-02"),
            event("cp_review_held", "2026-05-28"),
            event("cp_review_held", "2026-11-20"),
            event("cp_review_held", "2027-05-14"),
        ]
    )

    reviews = of_rule(obligations, "cp-review")

    assert [r.sequence for r in reviews] == [1, 2, 3, 4]
    assert [r.due_at for r in reviews] == [
        end_of("2026-06-02"),
        end_of("2026-11-28"),
        end_of("2027-05-20"),
        end_of("2027-11-14"),
    ]
    assert [r.opened_at for r in reviews[1:]] == [r.met_at for r in reviews[:-1]]


def test_a_repeat_opens_at_the_meeting_event_and_names_it() -> None:
    obligations = derive(
        [
            event("child_protection_plan_started", "2026-03-02"),
            event("cp_review_held", "2026-05-28", id="review-1"),
        ]
    )

    second = of_rule(obligations, "cp-review")[1]

    assert second.opened_at == local("2026-05-28")
    assert second.opened_by_event == "review-1"
    assert second.met_at is None


def test_a_late_review_starts_the_next_interval_from_the_day_it_was_held() -> None:
    obligations = derive(
        [
            event("child_protection_plan_started", "2026-03-02"),
            event("cp_review_held", "2026-06-15"),
        ]
    )

    first, second = of_rule(obligations, "cp-review")

    assert status_at(first, LATER) == "met_late"
    assert second.due_at == end_of("2026-12-15")


def test_cla_review_is_due_in_20_working_days_then_3_months_then_6_months_forever() -> None:
    obligations = derive(
        [
            event("became_looked_after", "2026-03-02"),
            event("cla_review_held", "2026-03-27"),
            event("cla_review_held", "2026-06-26"),
            event("cla_review_held", "2026-12-18"),
            event("cla_review_held", "2027-06-11"),
        ]
    )

    reviews = of_rule(obligations, "cla-review")

    assert [r.due_at for r in reviews] == [
        end_of("2026-03-30"),
        end_of("2026-06-27"),
        end_of("2026-12-26"),
        end_of("2027-06-18"),
        end_of("2027-12-11"),
    ]
    assert all(status_at(r, LATER) == "met" for r in reviews[:-1])


def test_cp_visits_repeat_every_10_working_days_from_each_visit() -> None:
    obligations = derive(
        [
            event("child_protection_plan_started", "2026-03-02"),
            event("child_visited", "2026-03-12"),
            event("child_visited", "2026-03-25"),
        ]
    )

    visits = of_rule(obligations, "cp-visit")

    # From 25 March, 10 working days skip Good Friday and Easter Monday (3 and 6 April).
    assert [v.due_at for v in visits] == [
        end_of("2026-03-16"),
        end_of("2026-03-26"),
        end_of("2026-04-10"),
    ]


def test_ending_the_plan_cancels_the_open_visit_and_keeps_the_met_ones() -> None:
    obligations = derive(
        [
            event("child_protection_plan_started", "2026-03-02"),
            event("child_visited", "2026-03-12"),
            event("child_protection_plan_ended", "2026-03-20"),
            event("child_visited", "2026-03-24"),
        ]
    )

    visits = of_rule(obligations, "cp-visit")

    assert [status_at(v, LATER) for v in visits] == ["met", "cancelled"]


def test_cla_visits_are_due_1_week_after_placement_then_every_6_weeks() -> None:
    obligations = derive(
        [
            event("placement_started", "2026-03-02"),
            event("child_visited", "2026-03-06"),
            event("child_visited", "2026-04-16"),
        ]
    )

    visits = of_rule(obligations, "cla-visit")

    assert [v.due_at for v in visits] == [
        end_of("2026-03-09"),
        end_of("2026-04-17"),
        end_of("2026-05-28"),
    ]


def test_a_new_placement_cancels_the_open_cla_visit_and_starts_a_fresh_one() -> None:
    obligations = derive(
        [
            event("placement_started", "2026-03-02", id="placement-1"),
            event("child_visited", "2026-03-06"),
            event("placement_started", "2026-03-20", id="placement-2"),
        ]
    )

    met, superseded, fresh = of_rule(obligations, "cla-visit")

    assert status_at(met, LATER) == "met"
    assert superseded.cancelled_at == local("2026-03-20")
    assert superseded.cancelled_by_event == "placement-2"
    assert (fresh.sequence, fresh.opened_by_event) == (1, "placement-2")
    assert fresh.due_at == end_of("2026-03-27")


# reg. 28: after the first year of a placement meant to last until the child is 18 (data.long_term
# on placement_started), visits are due at most 3-monthly. A placement on Mon 2 March 2026 has
# its first anniversary on Tue 2 March 2027.


def visits_after(placement: Event, *visits: str) -> list[Obligation]:
    """The cla-visit obligations of a placement followed by visits on the given days."""
    log = [placement, *(event("child_visited", day) for day in visits)]
    return of_rule(derive(log), "cla-visit")


LONG_TERM = event("placement_started", "2026-03-02", id="placement", long_term=True)


def test_a_long_term_placement_is_visited_6_weekly_in_its_first_year_then_3_monthly() -> None:
    visits = visits_after(
        LONG_TERM,
        "2026-03-06",
        "2026-04-16",
        "2026-05-28",
        "2026-07-09",
        "2026-08-20",
        "2026-10-01",
        "2026-11-12",
        "2026-12-24",
        "2027-02-04",
        "2027-03-18",
    )

    assert [v.due_at for v in visits] == [
        end_of("2026-03-09"),  # within 1 week of the placement
        end_of("2026-04-17"),  # then 6 weeks after each visit in the first year
        end_of("2026-05-28"),
        end_of("2026-07-09"),
        end_of("2026-08-20"),
        end_of("2026-10-01"),
        end_of("2026-11-12"),
        end_of("2026-12-24"),
        end_of("2027-02-04"),
        end_of("2027-03-18"),
        end_of("2027-06-18"),  # 3 months after the visit of 18 March 2027, in the second year
    ]
    assert [status_at(v, LATER) for v in visits[:-1]] == ["met"] * 10


def test_a_visit_the_day_before_the_first_anniversary_sets_a_6_week_interval() -> None:
    last = visits_after(LONG_TERM, "2026-03-06", "2027-03-01")[-1]

    assert last.due_at == end_of("2027-04-12")


def test_a_visit_on_the_first_anniversary_sets_a_3_month_interval() -> None:
    last = visits_after(LONG_TERM, "2026-03-06", "2027-03-02")[-1]

    assert last.due_at == end_of("2027-06-02")


def test_visits_after_the_first_year_stay_3_monthly() -> None:
    last = visits_after(LONG_TERM, "2026-03-06", "2027-03-02", "2027-05-20")[-1]

    assert last.due_at == end_of("2027-08-20")


@pytest.mark.parametrize("long_term", [False, None], ids=["not-long-term", "not-said"])
def test_other_placements_stay_6_weekly_after_their_first_year(long_term: bool | None) -> None:
    data = {} if long_term is None else {"long_term": long_term}
    placement = event("placement_started", "2026-03-02", id="placement", **data)

    last = visits_after(placement, "2026-03-06", "2027-03-02")[-1]

    assert last.due_at == end_of("2027-04-13")


def test_the_first_year_is_the_current_placements() -> None:
    moved = event("placement_started", "2026-09-01", id="placement-2", long_term=True)
    log = [LONG_TERM, moved, event("child_visited", "2026-09-04")]

    last = of_rule(derive([*log, event("child_visited", "2027-03-02")]), "cla-visit")[-1]

    # The new placement's first year runs to 31 August 2027: 6 weeks, not 3 months.
    assert last.due_at == end_of("2027-04-13")


def test_a_new_placement_not_meant_to_last_returns_to_6_weekly_visits() -> None:
    moved = event("placement_started", "2027-06-01", id="placement-2")

    last = of_rule(derive([LONG_TERM, moved, event("child_visited", "2027-06-03")]), "cla-visit")[
        -1
    ]

    assert last.due_at == end_of("2027-07-15")


def test_a_visit_meets_both_the_cp_visit_and_the_cla_visit() -> None:
    obligations = derive(
        [
            event("child_protection_plan_started", "2026-03-02"),
            event("placement_started", "2026-03-02"),
            event("child_visited", "2026-03-05", id="visit"),
        ]
    )

    assert of_rule(obligations, "cp-visit")[0].met_by_event == "visit"
    assert of_rule(obligations, "cla-visit")[0].met_by_event == "visit"


def test_pathway_plan_reviews_repeat_every_6_months() -> None:
    obligations = derive(
        [
            event("pathway_plan_agreed", "2026-03-02"),
            event("pathway_plan_reviewed", "2026-08-31"),
        ]
    )

    assert [p.due_at for p in of_rule(obligations, "pathway-plan-review")] == [
        end_of("2026-09-02"),
        end_of("2027-02-28"),
    ]


def test_a_six_month_interval_from_the_31st_ends_on_the_last_day_of_a_shorter_month() -> None:
    obligations = derive([event("pathway_plan_agreed", "2026-08-31")])

    assert only(obligations, "pathway-plan-review").due_at == end_of("2027-02-28")


def test_closing_the_case_cancels_every_open_obligation() -> None:
    obligations = derive([opened(row) for row in ROWS] + [event("case_closed", "2026-03-03")])

    assert {status_at(o, LATER) for o in obligations} == {"cancelled"}
    assert {o.rule_id for o in obligations} == set(BY_ID)


# The initial child protection conference counts from the strategy discussion.
# Easter 2026: Good Friday 3 April and Easter Monday 6 April are bank holidays.


def test_the_initial_conference_counts_from_the_strategy_discussion_before_the_enquiry() -> None:
    discussion = event("strategy_discussion_held", "2026-03-23", id="sd")
    obligations = derive([discussion, event("section47_started", "2026-03-25", id="s47")])

    conference = only(obligations, "initial-cp-conference")

    # 15 working days after Mon 23 March, skipping Good Friday and Easter Monday.
    assert conference.due_at == end_of("2026-04-15")
    assert (conference.opened_by_event, conference.opened_at) == ("sd", discussion.occurred_at)


def test_without_a_strategy_discussion_the_initial_conference_counts_from_the_enquiry() -> None:
    obligations = derive([event("section47_started", "2026-03-25", id="s47")])

    conference = only(obligations, "initial-cp-conference")

    # 15 working days after Wed 25 March, skipping Good Friday and Easter Monday.
    assert conference.due_at == end_of("2026-04-17")
    assert (conference.opened_by_event, conference.opened_at) == ("s47", local("2026-03-25"))


def test_the_conference_keeps_its_id_whichever_event_it_counts_from() -> None:
    enquiry = event("section47_started", "2026-03-25", id="s47")
    discussion = event("strategy_discussion_held", "2026-03-23", id="sd")

    with_discussion = only(derive([discussion, enquiry]), "initial-cp-conference")
    without = only(derive([enquiry]), "initial-cp-conference")

    assert with_discussion.id == without.id
    assert with_discussion.due_at != without.due_at


def test_the_latest_strategy_discussion_before_the_enquiry_counts() -> None:
    obligations = derive(
        [
            event("strategy_discussion_held", "2026-03-02", id="sd-1"),
            event("strategy_discussion_held", "2026-03-23", id="sd-2"),
            event("section47_started", "2026-03-25", id="s47"),
        ]
    )

    conference = only(obligations, "initial-cp-conference")

    assert (conference.opened_by_event, conference.due_at) == ("sd-2", end_of("2026-04-15"))


def test_a_strategy_discussion_at_the_moment_the_enquiry_started_counts() -> None:
    obligations = derive(
        [
            event("section47_started", "2026-03-25", id="s47"),
            event("strategy_discussion_held", "2026-03-25", id="sd"),
        ]
    )

    assert only(obligations, "initial-cp-conference").opened_by_event == "sd"


def test_a_strategy_discussion_after_the_enquiry_started_does_not_count() -> None:
    obligations = derive(
        [
            event("section47_started", "2026-03-25", id="s47"),
            event("strategy_discussion_held", "2026-03-26", id="sd"),
        ]
    )

    conference = only(obligations, "initial-cp-conference")

    assert (conference.opened_by_event, conference.due_at) == ("s47", end_of("2026-04-17"))


def test_a_strategy_discussion_counts_for_one_enquiry_only() -> None:
    obligations = derive(
        [
            event("strategy_discussion_held", "2026-03-02", id="sd"),
            event("section47_started", "2026-03-04", id="s47-1"),
            event("icpc_held", "2026-03-20", plan=True),
            event("section47_started", "2026-03-25", id="s47-2"),
        ]
    )

    first, second = of_rule(obligations, "initial-cp-conference")

    # 15 working days after Mon 2 March is Mon 23 March.
    assert (first.opened_by_event, first.due_at) == ("sd", end_of("2026-03-23"))
    assert (second.opened_by_event, second.due_at) == ("s47-2", end_of("2026-04-17"))


def test_a_strategy_discussion_on_the_day_an_enquiry_started_counts_for_that_one_only() -> None:
    obligations = derive(
        [
            event("strategy_discussion_held", "2026-03-04", id="sd"),
            event("section47_started", "2026-03-04", id="s47-1"),
            event("section47_started", "2026-03-25", id="s47-2"),
        ]
    )

    first, second = of_rule(obligations, "initial-cp-conference")

    assert first.opened_by_event == "sd"
    assert (second.opened_by_event, second.due_at) == ("s47-2", end_of("2026-04-17"))


def test_a_strategy_discussion_before_the_case_was_closed_does_not_count_after() -> None:
    obligations = derive(
        [
            event("strategy_discussion_held", "2026-03-02", id="sd"),
            event("case_closed", "2026-03-03"),
            event("case_reopened", "2026-03-20"),
            event("section47_started", "2026-03-25", id="s47"),
        ]
    )

    conference = only(obligations, "initial-cp-conference")

    assert (conference.opened_by_event, conference.due_at) == ("s47", end_of("2026-04-17"))


def test_a_conference_held_since_the_strategy_discussion_ends_what_it_counts_for() -> None:
    obligations = derive(
        [
            event("strategy_discussion_held", "2026-03-02", id="sd"),
            event("icpc_held", "2026-03-10", plan=False),
            event("section47_started", "2026-03-25", id="s47"),
        ]
    )

    conference = only(obligations, "initial-cp-conference")

    assert (conference.opened_by_event, conference.due_at) == ("s47", end_of("2026-04-17"))


def test_a_strategy_discussion_alone_opens_no_conference() -> None:
    obligations = derive([event("strategy_discussion_held", "2026-03-23")])

    assert of_rule(obligations, "initial-cp-conference") == []


# Scheduled tasks


def task(task_id: str, due_at: str, when: str = START) -> Event:
    return event("task_due", when, id=f"due-{task_id}", task_id=task_id, due_at=due_at)


def test_a_task_is_due_at_the_end_of_its_due_date() -> None:
    obligation = only(derive([task("T-1", "2026-04-10")]), "scheduled-task")

    assert obligation.due_at == end_of("2026-04-10")


def test_a_task_due_at_a_datetime_is_due_at_the_end_of_that_local_day() -> None:
    # 23:30 UTC on 10 June is 00:30 BST on 11 June.
    obligation = only(derive([task("T-1", "2026-06-10T23:30:00Z")]), "scheduled-task")

    assert obligation.due_at == end_of("2026-06-11")


def test_completing_one_task_does_not_meet_another() -> None:
    obligations = derive(
        [
            task("T-A", "2026-03-20"),
            task("T-B", "2026-03-20"),
            event("task_completed", "2026-03-10", task_id="T-A"),
        ]
    )

    met = {o.opened_by_event: o.met_at for o in of_rule(obligations, "scheduled-task")}

    assert met == {"due-T-A": local("2026-03-10"), "due-T-B": None}


def test_completing_an_unknown_task_meets_nothing() -> None:
    obligations = derive(
        [task("T-A", "2026-03-20"), event("task_completed", "2026-03-10", task_id="T-Z")]
    )

    assert only(obligations, "scheduled-task").met_at is None


def test_closing_the_case_cancels_every_open_task() -> None:
    obligations = derive(
        [
            task("T-A", "2026-03-20"),
            task("T-B", "2026-03-27"),
            event("case_closed", "2026-03-10", id="close"),
        ]
    )

    assert [o.cancelled_by_event for o in of_rule(obligations, "scheduled-task")] == [
        "close",
        "close",
    ]


def test_a_task_with_a_past_due_date_opens_already_overdue() -> None:
    obligation = only(derive([task("T-A", "2026-02-20")]), "scheduled-task")

    assert status_at(obligation, local(START, "09:00")) == "overdue"


def test_a_task_without_a_readable_due_date_opens_nothing() -> None:
    assert derive([task("T-A", "next Tuesday")]) == ()
