"""Alerts owed at an instant, when that can next change, and the payload (docs/webhooks.md).

The assessment opened by a referral on Monday 2 March 2026 is due Thursday 7 May 2026,
warns from 00:00 on 29 April and escalates after the end of 14 May and of 29 May. The
cp-review opened by a plan on 2 March is due 2 June; unbooked, it is at risk from 18 May.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from builders import CHILDREN, derive, end_of, event, local, of_rule, only
from hypothesis import given
from hypothesis import strategies as st

from service.domain.alerts import (
    OwedAlert,
    alert_payload,
    next_check_at,
    owed_alerts,
    ping_payload,
)
from service.domain.derive import Obligation

MICROSECOND = timedelta(microseconds=1)
ASSESSMENT = only(derive([event("referral_received", "2026-03-02")]), "assessment-completion")
PLAN = event("child_protection_plan_started", "2026-03-02")
CP_REVIEW = of_rule(derive([PLAN]), "cp-review")[0]


def owed(obligation: Obligation, at: datetime) -> list[tuple[str, int]]:
    return [(a.type, a.level) for a in owed_alerts(obligation, at)]


# What is owed: the current state only


def test_an_upcoming_obligation_owes_nothing() -> None:
    assert owed(ASSESSMENT, local("2026-04-28")) == []


def test_a_due_soon_obligation_owes_due_soon() -> None:
    assert owed(ASSESSMENT, local("2026-04-29")) == [("obligation.due_soon", 0)]


def test_an_overdue_obligation_owes_overdue_and_no_due_soon() -> None:
    assert owed(ASSESSMENT, end_of("2026-05-07") + MICROSECOND) == [("obligation.overdue", 0)]


def test_an_escalated_obligation_owes_overdue_and_its_current_level_only() -> None:
    assert owed(ASSESSMENT, local("2026-06-01")) == [
        ("obligation.overdue", 0),
        ("obligation.escalated", 2),
    ]


def test_escalation_level_1_is_owed_between_the_two_thresholds() -> None:
    assert ("obligation.escalated", 1) in owed(ASSESSMENT, local("2026-05-15"))


def test_an_obligation_met_on_time_owes_nothing() -> None:
    met = replace(ASSESSMENT, met_at=local("2026-05-01"), met_by_event="ev")
    assert owed(met, local("2026-06-01")) == []


def test_an_obligation_met_late_owes_met_late_only() -> None:
    met = replace(ASSESSMENT, met_at=local("2026-05-12"), met_by_event="ev")
    assert owed(met, local("2026-06-01")) == [("obligation.met_late", 0)]


def test_a_cancelled_obligation_owes_nothing() -> None:
    cancelled = replace(ASSESSMENT, cancelled_at=local("2026-05-12"), cancelled_by_event="ev")
    assert owed(cancelled, local("2026-06-01")) == []


def test_an_unbooked_review_owes_at_risk_beside_due_soon() -> None:
    assert owed(CP_REVIEW, local("2026-05-19")) == [
        ("obligation.due_soon", 0),
        ("obligation.at_risk", 0),
    ]


def test_an_overdue_review_owes_overdue_rather_than_at_risk() -> None:
    assert owed(CP_REVIEW, end_of("2026-06-02") + MICROSECOND) == [("obligation.overdue", 0)]


# When to look again


def test_an_upcoming_obligation_is_next_checked_when_due_soon_starts() -> None:
    assert next_check_at(ASSESSMENT, local("2026-03-02")) == local("2026-04-29")


def test_a_due_soon_obligation_is_next_checked_the_instant_it_becomes_overdue() -> None:
    assert next_check_at(ASSESSMENT, local("2026-04-29")) == end_of("2026-05-07") + MICROSECOND


def test_an_overdue_obligation_is_next_checked_when_it_passes_its_next_escalation() -> None:
    after = end_of("2026-05-07") + MICROSECOND
    assert next_check_at(ASSESSMENT, after) == end_of("2026-05-14") + MICROSECOND


def test_an_obligation_past_its_last_escalation_needs_no_more_checks() -> None:
    assert next_check_at(ASSESSMENT, local("2026-06-01")) is None


def test_a_closed_obligation_needs_no_more_checks() -> None:
    met = replace(ASSESSMENT, met_at=local("2026-03-10"), met_by_event="ev")
    assert next_check_at(met, local("2026-03-10")) is None


def test_an_obligation_met_late_in_a_moment_is_checked_when_it_is_met() -> None:
    met_at = local("2026-05-12", "10:00")
    met = replace(ASSESSMENT, met_at=met_at, met_by_event="ev")
    assert next_check_at(met, met_at - timedelta(minutes=2)) == met_at


def test_an_obligation_met_on_time_later_is_not_checked_after_its_meeting() -> None:
    met = replace(ASSESSMENT, met_at=local("2026-04-01"), met_by_event="ev")
    assert next_check_at(met, local("2026-03-31")) is None


def test_a_review_is_next_checked_when_its_risk_starts() -> None:
    assert next_check_at(CP_REVIEW, local("2026-05-10")) == local("2026-05-18")


RISKY_BOOKED = of_rule(
    derive(
        [
            PLAN,
            event("review_scheduled", "2026-04-01", review="cp-review", scheduled_for="2026-06-10"),
            event("review_scheduled", "2026-04-15", review="cp-review", scheduled_for="2026-05-29"),
        ]
    ),
    "cp-review",
)[0]
LATE = replace(ASSESSMENT, met_at=local("2026-05-20", "11:00"), met_by_event="ev")
SAMPLES = (ASSESSMENT, CP_REVIEW, RISKY_BOOKED, LATE)
START = datetime(2026, 3, 1, tzinfo=UTC)


@given(
    obligation=st.sampled_from(SAMPLES),
    offset=st.integers(min_value=0, max_value=120 * 86_400_000_000),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_no_alert_becomes_owed_between_an_instant_and_its_next_check(
    obligation: Obligation, offset: int, fraction: float
) -> None:
    """Alerts may stop being owed meanwhile (a risk that ends), never start."""
    after = START + timedelta(microseconds=offset)
    following = next_check_at(obligation, after)
    horizon = following or after + timedelta(days=400)
    span = (horizon - after) // MICROSECOND
    between = after + MICROSECOND * min(int(span * fraction), span - 1)
    assert set(owed_alerts(obligation, between)) <= set(owed_alerts(obligation, after))


@given(
    obligation=st.sampled_from(SAMPLES),
    offset=st.integers(min_value=0, max_value=120 * 86_400_000_000),
)
def test_the_next_check_is_strictly_later(obligation: Obligation, offset: int) -> None:
    after = START + timedelta(microseconds=offset)
    following = next_check_at(obligation, after)
    assert following is None or following > after


# The payload


def test_an_alert_payload_carries_the_obligation_the_case_and_the_rule() -> None:
    at = datetime(2026, 5, 12, 9, tzinfo=UTC)
    rule = CHILDREN.rule("assessment-completion")
    assert rule is not None
    payload = alert_payload(
        OwedAlert("obligation.overdue"),
        ASSESSMENT,
        rule=rule,
        rule_name=rule.name,
        worker_id="W-1",
        team_id="T-1",
        calendar=CHILDREN.calendar,
        at=at,
    )
    assert payload["type"] == "obligation.overdue"
    assert payload["timestamp"] == "2026-05-12T09:00:00Z"
    assert payload["data"]["case"] == {"case_id": "C-1", "worker_id": "W-1", "team_id": "T-1"}
    assert payload["data"]["rule"] == {
        "id": "assessment-completion",
        "name": rule.name,
        "source": rule.source,
    }
    assert payload["data"]["obligation"] == {
        "id": ASSESSMENT.id,
        "case_id": "C-1",
        "rule_id": "assessment-completion",
        "rule_name": rule.name,
        "status": "overdue",
        "missed": False,
        "opened_at": "2026-03-02T00:00:00Z",
        "due_at": "2026-05-07T22:59:59.999999Z",
        "met_at": None,
        "met_at_latest": False,
        "cancelled_at": None,
        "worker_id": "W-1",
        "team_id": "T-1",
        "sequence": 1,
        "working_days_overdue": 3,
        "escalation_level": 0,
        "at_risk": False,
        "opened_by_event": ASSESSMENT.opened_by_event,
        "met_by_event": None,
        "original_due_at": None,
        "delay_reason": None,
        "delay_reason_label": None,
        "delay_note": None,
        "delay_reason_event": None,
        "extension_authorised_by": None,
        "extension_event": None,
        "paused": False,
    }


def test_an_alert_payload_explains_the_deadline_in_one_sentence() -> None:
    # 45 working days from Mon 2 Mar 2026 skip Good Friday (3 Apr), Easter Monday (6 Apr)
    # and the early May bank holiday (4 May).
    payload = alert_payload(
        OwedAlert("obligation.overdue"),
        ASSESSMENT,
        rule=CHILDREN.rule("assessment-completion"),
        rule_name="Assessment",
        worker_id=None,
        team_id=None,
        calendar=CHILDREN.calendar,
        at=datetime(2026, 5, 12, 9, tzinfo=UTC),
    )
    assert payload["data"]["explanation"] == {
        "text": "Due by the end of Thu 7 May 2026: 45 working days after Mon 2 Mar 2026, "
        "skipping Fri 3 Apr (Good Friday), Mon 6 Apr (Easter Monday), "
        "Mon 4 May (Early May bank holiday)."
    }


def test_a_ping_payload_names_its_subscription() -> None:
    payload = ping_payload("wh_1", datetime(2026, 11, 20, 12, tzinfo=UTC))
    assert payload["type"] == "webhook.test"
    assert payload["timestamp"] == "2026-11-20T12:00:00Z"
    assert payload["data"]["subscription_id"] == "wh_1"


def test_a_met_late_payload_says_by_how_many_working_days() -> None:
    # Due Thu 7 May 2026, met Tue 12 May: Fri 8, Mon 11 and Tue 12 May are working days.
    met = replace(ASSESSMENT, met_at=local("2026-05-12") + timedelta(hours=10), met_by_event="ev")
    rule = CHILDREN.rule("assessment-completion")
    payload = alert_payload(
        OwedAlert("obligation.met_late"),
        met,
        rule=rule,
        rule_name="Assessment",
        worker_id=None,
        team_id=None,
        calendar=CHILDREN.calendar,
        at=local("2026-05-13"),
    )
    assert payload["data"]["obligation"]["working_days_late"] == 3
