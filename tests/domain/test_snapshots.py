"""Judging from snapshots: matchers that tell sources apart (`unless`), and meeting events that
say which position of a chain they meet (`data.sequence`), as Annex A imports need."""

from datetime import datetime
from itertools import permutations

import pytest
from builders import CASE_ID, PLAN_REVIEWS, derive, end_of, event, local, of_rule, only

from service.domain.derive import obligation_id
from service.domain.events import Event
from service.domain.rules import Matcher, RulesetInvalid, load_ruleset
from service.domain.status import status_at

EXTRACTION = local("2026-11-20", "12:00")
IMPORTED = {"source": "annex-a"}

RULESET_WITH_UNLESS = """
[[rules]]
id = "decision"
name = "Decision"
source = "Local"
starts_on = [{type = "referral_received", unless = {source = ["annex-a", "legacy"]}}]
due = "1 working day"
met_by = ["referral_decision_made"]
"""

NO_REPEAT = """
[[rules]]
id = "seen"
name = "Seen once"
source = "Local"
starts_on = ["placement_started"]
due = "1 week"
met_by = ["child_visited"]
"""


def statuses(events: list[Event], rule_id: str) -> list[tuple[int, str, datetime]]:
    """Each obligation of a rule as (sequence, status at extraction, due_at)."""
    return [
        (o.sequence, status_at(o, EXTRACTION), o.due_at) for o in of_rule(derive(events), rule_id)
    ]


# `unless`: the counterpart of `where`


def test_a_matcher_with_unless_refuses_an_event_carrying_a_refused_value() -> None:
    matcher = Matcher("referral_received", unless={"source": ("annex-a",)})

    assert not matcher.matches(event("referral_received", "2026-11-02", **IMPORTED))


def test_a_matcher_with_unless_accepts_an_event_without_that_data_key() -> None:
    matcher = Matcher("referral_received", unless={"source": ("annex-a",)})

    assert matcher.matches(event("referral_received", "2026-11-02"))


def test_a_matcher_with_unless_accepts_an_event_with_another_value() -> None:
    matcher = Matcher("referral_received", unless={"source": ("annex-a",)})

    assert matcher.matches(event("referral_received", "2026-11-02", source="cms"))


def test_unless_and_where_must_both_hold() -> None:
    matcher = Matcher(
        "referral_decision_made",
        where={"outcome": ("no_further_action",)},
        unless={"source": ("annex-a",)},
    )

    assert matcher.matches(
        event("referral_decision_made", "2026-11-02", outcome="no_further_action")
    )
    assert not matcher.matches(
        event("referral_decision_made", "2026-11-02", outcome="no_further_action", **IMPORTED)
    )
    assert not matcher.matches(event("referral_decision_made", "2026-11-02", outcome="assessment"))


def test_the_loader_reads_unless_with_a_list_of_values_and_writes_it_back() -> None:
    ruleset = load_ruleset(RULESET_WITH_UNLESS)

    [rule] = ruleset.rules
    assert rule.to_json()["starts_on"] == [
        {"type": "referral_received", "unless": {"source": ["annex-a", "legacy"]}}
    ]
    assert not rule.starts_on[0].matches(event("referral_received", "2026-11-02", source="legacy"))


def test_an_unless_that_is_not_a_table_is_reported_at_its_pointer_and_line() -> None:
    text = RULESET_WITH_UNLESS.replace('unless = {source = ["annex-a", "legacy"]}', 'unless = "x"')

    with pytest.raises(RulesetInvalid) as raised:
        load_ruleset(text)

    [problem] = raised.value.problems
    assert problem.pointer == "/rules/0/starts_on/0/unless"
    assert problem.line == 6


def test_an_imported_referral_opens_no_referral_decision_or_first_contact() -> None:
    obligations = derive([event("referral_received", "2026-11-02", **IMPORTED)])

    assert of_rule(obligations, "referral-decision") == []
    assert of_rule(obligations, "first-contact") == []


def test_an_imported_referral_still_opens_the_assessment_clock() -> None:
    obligations = derive([event("referral_received", "2026-08-14", **IMPORTED)])

    assert only(obligations, "assessment-completion").due_at == end_of("2026-10-19")


def test_a_referral_from_a_case_management_system_still_opens_every_referral_rule() -> None:
    obligations = derive([event("referral_received", "2026-11-02")])

    assert {o.rule_id for o in obligations} == {
        "referral-decision",
        "first-contact",
        "assessment-completion",
    }


def test_an_imported_protection_plan_opens_no_core_group_deadline() -> None:
    obligations = derive([event("child_protection_plan_started", "2026-02-02", **IMPORTED)])

    assert of_rule(obligations, "core-group") == []
    assert len(of_rule(obligations, "cp-review")) == 1


# `data.sequence`: a latest date from a snapshot


def test_a_latest_cla_review_after_the_first_window_leaves_one_review_due_six_months_on() -> None:
    log = [
        event("became_looked_after", "2024-01-10", **IMPORTED),
        event("cla_review_held", "2026-09-01", sequence=2, **IMPORTED),
    ]

    assert statuses(log, "cla-review") == [(3, "upcoming", end_of("2027-03-01"))]


def test_without_a_sequence_the_same_review_would_be_taken_for_a_late_first_one() -> None:
    log = [
        event("became_looked_after", "2024-01-10"),
        event("cla_review_held", "2026-09-01"),
    ]

    first, second = statuses(log, "cla-review")
    assert first[1] == "met_late"
    assert second == (2, "due_soon", end_of("2026-12-01"))


def test_a_first_cla_review_imported_without_a_sequence_is_met_and_the_next_due_in_3_months() -> (
    None
):
    log = [
        event("became_looked_after", "2026-08-03", **IMPORTED),
        event("cla_review_held", "2026-08-20", **IMPORTED),
    ]

    assert statuses(log, "cla-review") == [
        (1, "met", end_of("2026-09-01")),
        (2, "due_soon", end_of("2026-11-20")),
    ]


def test_a_latest_cp_visit_drops_the_unknown_history_and_opens_the_next_visit() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [(3, "overdue", end_of("2026-11-16"))]


def test_the_resumed_position_keeps_the_id_scheme_of_its_chain() -> None:
    start = event("child_protection_plan_started", "2026-02-02", **IMPORTED)
    visit = event("child_visited", "2026-11-02", sequence=2, **IMPORTED)

    resumed = only(derive([start, visit]), "cp-visit")

    assert resumed.id == obligation_id(CASE_ID, "cp-visit", start.id, 3)
    assert resumed.opened_by_event == visit.id
    assert resumed.opened_at == visit.occurred_at


def test_a_later_snapshot_visit_on_time_meets_the_resumed_position() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
        event("child_visited", "2026-11-13", sequence=2, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [
        (3, "met", end_of("2026-11-16")),
        (4, "upcoming", end_of("2026-11-27")),
    ]


def test_a_deadline_met_by_a_snapshot_date_is_met_then_at_the_latest() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
        event("child_visited", "2026-11-13", sequence=2, **IMPORTED),
    ]

    [met] = [o for o in of_rule(derive(log), "cp-visit") if o.met_at is not None]
    assert (met.met_at, met.met_at_latest) == (local("2026-11-13", "00:00"), True)


def test_a_deadline_met_by_an_event_the_log_holds_is_met_exactly_then() -> None:
    log = [
        event("child_protection_plan_started", "2026-11-02"),
        event("child_visited", "2026-11-06"),
    ]

    [met] = [o for o in of_rule(derive(log), "cp-visit") if o.met_at is not None]
    assert (met.met_at, met.met_at_latest) == (local("2026-11-06", "00:00"), False)


def test_a_later_snapshot_visit_past_the_deadline_claims_no_late_visit() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-10-01", sequence=2, **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [(4, "overdue", end_of("2026-11-16"))]


# Position 3 below opens at the visit of Monday 2 November 2026 and is due 10 working days
# later, at the end of Monday 16 November (no bank holiday falls in between).


def test_a_snapshot_visit_late_on_the_due_day_itself_is_on_time_and_meets() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
        event("child_visited", local("2026-11-16", "23:30"), sequence=2, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [
        (3, "met", end_of("2026-11-16")),
        (4, "upcoming", end_of("2026-11-30")),
    ]


def test_a_snapshot_visit_on_the_day_after_the_due_day_claims_no_late_visit() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
        event("child_visited", "2026-11-17", sequence=2, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [(4, "upcoming", end_of("2026-12-01"))]


def test_a_snapshot_visit_claiming_exactly_the_open_position_meets_it() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
        event("child_visited", "2026-11-10", sequence=3, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [
        (3, "met", end_of("2026-11-16")),
        (4, "due_soon", end_of("2026-11-24")),
    ]


def test_a_snapshot_visit_claiming_the_position_after_the_open_one_drops_it() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-11-02", sequence=2, **IMPORTED),
        event("child_visited", "2026-11-10", sequence=4, **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [(5, "due_soon", end_of("2026-11-24"))]


def test_a_sequenced_event_before_the_chain_opens_meets_nothing() -> None:
    log = [
        event("child_visited", "2026-01-20", sequence=2, **IMPORTED),
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
    ]

    assert statuses(log, "cp-visit") == [(1, "overdue", end_of("2026-02-16"))]


def test_a_sequenced_event_drops_a_non_repeating_obligation_and_opens_nothing() -> None:
    ruleset = load_ruleset(NO_REPEAT)
    log = [
        event("placement_started", "2026-11-02"),
        event("child_visited", "2026-11-04", sequence=2),
    ]

    assert derive(log, ruleset) == ()


@pytest.mark.parametrize("value", [1, 0, "2", True, 2.0, None])
def test_a_sequence_that_is_not_an_integer_from_2_is_ignored(value: object) -> None:
    log = [
        event("child_protection_plan_started", "2026-11-16"),
        event("child_visited", "2026-11-18", sequence=value),
    ]

    assert [(n, s) for n, s, _ in statuses(log, "cp-visit")] == [(1, "met"), (2, "upcoming")]


def test_a_sequence_beyond_the_repeat_list_uses_its_last_interval() -> None:
    log = [
        event("became_looked_after", "2024-01-10"),
        event("cla_review_held", "2026-09-01", sequence=7),
    ]

    assert statuses(log, "cla-review") == [(8, "upcoming", end_of("2027-03-01"))]


def test_a_cancellation_after_a_sequenced_meeting_cancels_only_the_resumed_position() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("cp_review_held", "2026-07-15", sequence=2, **IMPORTED),
        event("child_protection_plan_ended", "2026-10-01", **IMPORTED),
    ]

    assert statuses(log, "cp-review") == [(3, "cancelled", end_of("2027-01-15"))]


def test_sequenced_logs_derive_the_same_whatever_order_they_arrive_in() -> None:
    log = [
        event("child_protection_plan_started", "2026-02-02", **IMPORTED),
        event("child_visited", "2026-10-01", sequence=2, **IMPORTED),
        event("child_visited", "2026-10-08", sequence=2, **IMPORTED),
        event("cp_review_held", "2026-07-15", sequence=2, **IMPORTED),
        event("child_protection_plan_ended", "2026-11-19", **IMPORTED),
    ]
    expected = derive(log)

    for arrived in permutations(log):
        assert derive(list(arrived)) == expected


# A start that claims a position: chains whose start was never recorded


def test_an_imported_pathway_plan_review_alone_leaves_the_next_review_due_6_months_on() -> None:
    log = [event("pathway_plan_reviewed", "2026-09-01", sequence=2, **IMPORTED)]

    assert statuses(log, "pathway-plan-review") == [(3, "upcoming", end_of("2027-03-01"))]


def test_a_later_imported_pathway_plan_review_continues_the_same_chain() -> None:
    first = event("pathway_plan_reviewed", "2026-03-01", sequence=2, **IMPORTED)
    later = event("pathway_plan_reviewed", "2026-08-20", sequence=2, **IMPORTED)

    obligations = of_rule(derive([first, later]), "pathway-plan-review")

    assert [(o.sequence, status_at(o, EXTRACTION)) for o in obligations] == [
        (3, "met"),
        (4, "upcoming"),
    ]
    assert {o.id for o in obligations} == {
        obligation_id(CASE_ID, "pathway-plan-review", first.id, 3),
        obligation_id(CASE_ID, "pathway-plan-review", first.id, 4),
    }


def test_an_imported_pathway_plan_review_meets_a_plan_agreed_through_the_api() -> None:
    log = [
        event("pathway_plan_agreed", "2026-01-05"),
        event("pathway_plan_reviewed", "2026-06-30", sequence=2, **IMPORTED),
    ]

    assert statuses(log, "pathway-plan-review") == [(3, "upcoming", end_of("2026-12-30"))]


def test_a_pathway_plan_review_from_a_case_management_system_starts_nothing() -> None:
    log = [event("pathway_plan_reviewed", "2026-09-01")]

    assert derive(log) == ()


# Claimed positions in chains kept apart by `correlate_on`


def chains(events: list[Event]) -> list[tuple[int, str, str | None, datetime]]:
    """Each plan review as (position, opening event, meeting event, due_at)."""
    return [
        (o.sequence, o.opened_by_event, o.met_by_event, o.due_at)
        for o in of_rule(derive(events, PLAN_REVIEWS), "plan-review")
    ]


def test_a_claimed_review_keeps_the_chain_it_continues_to_its_own_plan() -> None:
    log = [
        event("care_plan_agreed", "2026-09-01", id="p1", plan_id="P-1"),
        event("care_plan_agreed", "2026-09-01", id="p2", plan_id="P-2"),
        event("care_plan_reviewed", "2026-09-20", id="claimed", plan_id="P-1", sequence=2),
        event("care_plan_reviewed", "2026-10-10", id="review", plan_id="P-1"),
    ]

    assert chains(log) == [
        (1, "p2", None, end_of("2026-09-29")),
        (3, "claimed", "review", end_of("2026-10-18")),
        (4, "review", None, end_of("2026-11-07")),
    ]


def test_a_start_claiming_a_position_picks_up_a_chain_of_its_own_plan_only() -> None:
    log = [
        event("care_plan_agreed", "2026-09-01", id="p2", plan_id="P-2"),
        event("care_plan_agreed", "2026-09-20", id="claimed", plan_id="P-1", sequence=2),
        event("care_plan_reviewed", "2026-10-10", id="review", plan_id="P-1"),
    ]

    assert chains(log) == [
        (1, "p2", None, end_of("2026-09-29")),
        (3, "claimed", "review", end_of("2026-10-18")),
        (4, "review", None, end_of("2026-11-07")),
    ]
