"""An alert is sent only while the event log supports it: judged at delivery against the
obligation as derived then, or withdrawn with a reason.

The assessment opened by a referral on Monday 2 March 2026 is due Thursday 7 May 2026, warns
from 00:00 on 29 April and escalates after the end of 14 May and of 29 May.
"""

from dataclasses import replace
from datetime import datetime, timedelta

from builders import derive, end_of, event, local, only

from service.domain.alerts import OwedAlert, withdrawal_reason
from service.domain.derive import Obligation

ASSESSMENT = only(derive([event("referral_received", "2026-03-02")]), "assessment-completion")
OVERDUE = OwedAlert("obligation.overdue")
AFTER_DUE = end_of("2026-05-07") + timedelta(microseconds=1)
LATER = local("2026-06-10")


def reason(alert: OwedAlert, obligation: Obligation | None, now: datetime = LATER) -> str | None:
    return withdrawal_reason(alert, obligation, raised_at=AFTER_DUE, now=now)


def test_an_overdue_alert_stands_while_the_obligation_is_open_past_its_due_day() -> None:
    assert reason(OVERDUE, ASSESSMENT) is None


def test_an_overdue_alert_stands_when_the_obligation_was_met_late() -> None:
    met_late = replace(ASSESSMENT, met_at=local("2026-05-12"), met_by_event="done")
    assert reason(OVERDUE, met_late) is None


def test_an_overdue_alert_is_withdrawn_when_a_later_batch_shows_it_met_on_time() -> None:
    on_time = replace(ASSESSMENT, met_at=local("2026-05-01"), met_by_event="done")
    assert reason(OVERDUE, on_time) == "met on time"


def test_an_overdue_alert_is_withdrawn_when_its_obligation_no_longer_exists() -> None:
    assert reason(OVERDUE, None) == "obligation no longer exists"


def test_an_overdue_alert_is_withdrawn_when_the_due_date_moved_past_now() -> None:
    moved = replace(ASSESSMENT, due_at=end_of("2026-06-30"))
    assert reason(OVERDUE, moved) == "not overdue: its due date has moved"


def test_a_due_soon_alert_is_withdrawn_when_the_obligation_closed_before_the_window() -> None:
    cancelled = replace(ASSESSMENT, cancelled_at=local("2026-04-20"), cancelled_by_event="x")
    alert = OwedAlert("obligation.due_soon")
    assert (
        reason(alert, cancelled, now=local("2026-04-30")) == "cancelled before its warning window"
    )


def test_an_escalation_stands_only_if_open_at_its_threshold() -> None:
    level_2 = OwedAlert("obligation.escalated", 2)
    met_between = replace(ASSESSMENT, met_at=local("2026-05-20"), met_by_event="done")
    assert reason(OwedAlert("obligation.escalated", 1), met_between) is None
    assert reason(level_2, met_between) == "met before escalation level 2"


def test_a_met_late_alert_is_withdrawn_when_the_meeting_event_now_falls_on_time() -> None:
    on_time = replace(ASSESSMENT, met_at=local("2026-05-01"), met_by_event="done")
    assert reason(OwedAlert("obligation.met_late"), on_time) == "not met late"
