"""Reasons, agreed extensions and pauses (docs/rules.md, Why a deadline is late).

The local rule below counts 10 working days from a referral, warns 2 working days before and
may be extended by up to 10 working days or paused for up to 20. Expected days are counted by
hand on the published bank holidays of England: Good Friday 3 April 2026, Easter Monday
6 April 2026 and the early May bank holiday, 4 May 2026. A referral on Monday 23 March 2026
is due on Wednesday 8 April (24-27 March, 30 March-2 April, 7 and 8 April).
"""

from __future__ import annotations

import pytest
from builders import CHILDREN, end_of, event, local

from service.domain.alerts import owed_alerts
from service.domain.derive import NoEffect, Obligation, derive_case
from service.domain.events import Event, check_builtin_data
from service.domain.rules import RulesetInvalid, load_ruleset
from service.domain.status import is_paused, status_at

HOME_VISIT = load_ruleset(
    """\
[reasons]
child_unavailable = "Child or family unavailable"
worker_absence = "Worker absence"

[[rules]]
id = "home-visit"
name = "Home visit within 10 working days of referral"
source = "Local practice standard"
starts_on = ["referral_received"]
due = "10 working days"
met_by = ["child_seen"]
cancelled_by = ["case_closed"]
warn_before = "2 working days"
extendable = true
max_extension = "10 working days"
pausable = true
max_pause = "20 working days"
"""
)
REFERRAL = event("referral_received", "2026-03-23")


def derived(*log: Event) -> Obligation:
    (obligation,) = derive_case("C-1", [REFERRAL, *log], HOME_VISIT).obligations
    return obligation


def ignored(*log: Event) -> tuple[NoEffect, ...]:
    return derive_case("C-1", [REFERRAL, *log], HOME_VISIT).without_effect


def extended(when: str, **data: object) -> Event:
    return event(
        "deadline_extended",
        when,
        rule_id="home-visit",
        reason="worker_absence",
        authorised_by="M-7",
        **data,
    )


def paused(when: str, clock: str = "00:00") -> Event:
    return event("deadline_paused", local(when, clock), rule_id="home-visit")


def resumed(when: str, clock: str = "00:00") -> Event:
    return event("deadline_resumed", local(when, clock), rule_id="home-visit")


def test_without_any_clock_event_the_referral_is_due_on_8_april() -> None:
    assert derived().due_at == end_of("2026-04-08")


# Reasons


def test_a_reason_is_recorded_beside_the_open_deadline() -> None:
    reason = event(
        "delay_reason_recorded",
        "2026-04-01",
        rule_id="home-visit",
        reason="child_unavailable",
        note="Family on holiday",
    )

    recorded = derived(reason).delay_reason

    assert recorded is not None
    assert (recorded.code, recorded.label, recorded.note) == (
        "child_unavailable",
        "Child or family unavailable",
        "Family on holiday",
    )


def test_a_reason_recorded_after_a_late_visit_is_kept_with_that_deadline() -> None:
    seen_late = event("child_seen", "2026-04-10")
    reason = event(
        "delay_reason_recorded", "2026-04-13", rule_id="home-visit", reason="worker_absence"
    )

    obligation = derived(seen_late, reason)

    assert obligation.delay_reason is not None
    assert obligation.delay_reason.code == "worker_absence"


def test_a_reason_naming_a_rule_with_no_deadline_in_the_case_has_no_effect() -> None:
    reason = event("delay_reason_recorded", "2026-03-20", rule_id="home-visit", reason="x")

    assert ignored(reason) == (NoEffect(reason.id, "no deadline of rule 'home-visit'"),)


# Extensions


def test_an_extension_moves_the_due_date_and_keeps_the_rules_date_beside_it() -> None:
    obligation = derived(extended("2026-04-01", due_on="2026-04-15"))

    assert obligation.due_at == end_of("2026-04-15")
    assert obligation.original_due_at == end_of("2026-04-08")


def test_an_extension_by_5_working_days_counts_them_from_the_date_in_force() -> None:
    # 9, 10, 13, 14 and 15 April.
    assert derived(extended("2026-04-01", extend_by="5 working days")).due_at == end_of(
        "2026-04-15"
    )


def test_status_follows_the_agreed_date() -> None:
    obligation = derived(extended("2026-04-01", due_on="2026-04-15"))

    assert status_at(obligation, local("2026-04-10", "12:00")) == "upcoming"
    assert status_at(obligation, local("2026-04-13", "09:00")) == "due_soon"
    assert status_at(obligation, local("2026-04-16", "09:00")) == "overdue"


def test_a_visit_within_the_extension_is_met_but_late_against_the_rules_date() -> None:
    obligation = derived(
        extended("2026-04-01", due_on="2026-04-15"), event("child_seen", "2026-04-14")
    )

    assert status_at(obligation, local("2026-04-20")) == "met"
    assert obligation.met_at is not None
    assert obligation.met_at > obligation.timeliness_due_at


def test_an_extension_past_the_rules_maximum_has_no_effect() -> None:
    # 10 working days after 8 April is 22 April.
    too_far = extended("2026-04-01", due_on="2026-04-23")

    assert derived(too_far).due_at == end_of("2026-04-08")
    assert [n.event_id for n in ignored(too_far)] == [too_far.id]


def test_an_extension_to_the_last_day_the_maximum_allows_is_agreed() -> None:
    assert derived(extended("2026-04-01", due_on="2026-04-22")).due_at == end_of("2026-04-22")


def test_an_extension_recorded_after_the_deadline_fell_due_has_no_effect() -> None:
    late = extended("2026-04-09", due_on="2026-04-15")

    assert derived(late).due_at == end_of("2026-04-08")
    assert ignored(late)[0].detail.startswith("the deadline had fallen due")


def test_an_extension_of_a_statutory_rule_has_no_effect() -> None:
    log = [
        REFERRAL,
        event(
            "deadline_extended",
            "2026-04-01",
            rule_id="assessment-completion",
            reason="worker_absence",
            authorised_by="M-7",
            due_on="2026-06-01",
        ),
    ]

    state = derive_case("C-1", log, CHILDREN)

    assessment = next(o for o in state.obligations if o.rule_id == "assessment-completion")
    assert assessment.original_due_at is None
    assert state.without_effect[0].detail == "rule 'assessment-completion' is not extendable"


def test_an_extension_gives_its_reason_to_the_deadline() -> None:
    reason = derived(extended("2026-04-01", due_on="2026-04-15")).delay_reason

    assert reason is not None
    assert reason.code == "worker_absence"


# Pauses


def test_paused_working_days_move_the_due_date_later() -> None:
    # Paused Monday 30 March to Thursday 9 April: 31 March, 1, 2, 7, 8 and 9 April are 6
    # working days, so 8 April moves to 16 April (9, 10, 13, 14, 15, 16).
    obligation = derived(paused("2026-03-30"), resumed("2026-04-09"))

    assert obligation.due_at == end_of("2026-04-16")
    assert obligation.original_due_at is None


def test_a_pause_longer_than_the_maximum_ends_by_itself() -> None:
    # 20 working days after 30 March is 29 April; 8 April plus 20 working days, skipping
    # 4 May, is 7 May.
    obligation = derived(paused("2026-03-30"))

    assert obligation.pauses[0].ends_at == end_of("2026-04-29")
    assert obligation.pauses[0].ended_by is None
    assert obligation.due_at == end_of("2026-05-07")


def test_a_resume_after_the_pause_ended_by_itself_has_no_effect() -> None:
    late_resume = resumed("2026-05-01")

    assert derived(paused("2026-03-30"), late_resume).due_at == end_of("2026-05-07")
    assert ignored(paused("2026-03-30"), late_resume) == (
        NoEffect(late_resume.id, "no paused deadline of rule 'home-visit'"),
    )


def test_nothing_is_owed_while_paused_and_alerts_come_as_usual_after() -> None:
    obligation = derived(paused("2026-03-30"))

    assert is_paused(obligation, local("2026-04-09", "12:00"))
    assert owed_alerts(obligation, local("2026-04-09", "12:00")) == []
    assert [a.type for a in owed_alerts(obligation, local("2026-05-08", "09:00"))] == [
        "obligation.overdue"
    ]


def test_a_deadline_due_soon_when_paused_stays_due_soon() -> None:
    # Due soon from the start of 2 April (two working days before 8 April).
    obligation = derived(paused("2026-04-02", "10:00"), resumed("2026-04-07", "10:00"))

    assert status_at(obligation, local("2026-04-02", "09:00")) == "due_soon"


def test_a_pause_after_the_due_date_has_no_effect() -> None:
    late = paused("2026-04-09")

    assert derived(late).due_at == end_of("2026-04-08")
    assert [n.event_id for n in ignored(late)] == [late.id]


def test_a_second_pause_while_paused_has_no_effect() -> None:
    again = paused("2026-03-31")

    assert ignored(paused("2026-03-30"), again) == (
        NoEffect(again.id, "the deadline is paused already"),
    )


def test_a_pause_ended_by_a_visit_at_the_same_instant_has_no_effect() -> None:
    pause = paused("2026-03-30", "10:00")
    visit = event("child_seen", local("2026-03-30", "10:00"))

    assert derived(pause, visit).pauses == ()
    assert ignored(pause, visit) == (NoEffect(pause.id, "the pause ended at the instant it began"),)


def test_a_resume_without_a_pause_has_no_effect() -> None:
    alone = resumed("2026-04-01")

    assert ignored(alone) == (NoEffect(alone.id, "no paused deadline of rule 'home-visit'"),)


# Data checks that need no ruleset


def test_an_extension_gives_either_a_date_or_a_duration() -> None:
    both = {
        "rule_id": "home-visit",
        "reason": "worker_absence",
        "authorised_by": "M-7",
        "due_on": "2026-04-15",
        "extend_by": "5 working days",
    }

    assert [p.key for p in check_builtin_data("deadline_extended", both)] == ["due_on"]


def test_a_note_longer_than_500_characters_is_refused() -> None:
    data = {"rule_id": "home-visit", "reason": "worker_absence", "note": "x" * 501}

    assert [p.key for p in check_builtin_data("delay_reason_recorded", data)] == ["note"]


# Ruleset keys


def test_an_extendable_rule_without_a_maximum_is_refused_naming_the_rule_and_line() -> None:
    text = """\
[[rules]]
id = "home-visit"
name = "Home visit"
source = "Local"
starts_on = ["referral_received"]
due = "10 working days"
met_by = ["child_seen"]
extendable = true
"""
    with pytest.raises(RulesetInvalid) as refused:
        load_ruleset(text)

    (problem,) = refused.value.problems
    assert (problem.pointer, problem.rule_id, problem.line) == (
        "/rules/0/max_extension",
        "home-visit",
        1,
    )


def test_a_ruleset_without_reasons_has_the_default_list() -> None:
    assert [code for code, _ in CHILDREN.reasons] == [
        "child_or_family_unavailable",
        "child_missing",
        "awaiting_other_agency",
        "worker_absence",
        "recorded_in_error",
    ]


def test_no_built_in_rule_is_extendable_or_pausable() -> None:
    assert not any(r.extendable or r.pausable for r in CHILDREN.rules)
