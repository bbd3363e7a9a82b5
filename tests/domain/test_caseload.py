"""A case counts in a caseload while it is open, for the worker and team it is allocated to
then: opened by its first event, closed by case_closed, opened again by case_reopened."""

from __future__ import annotations

from builders import event, local

from service.domain.caseload import OpenPeriod, open_periods


def test_a_case_is_open_from_its_first_event_with_its_first_allocation() -> None:
    log = [event("referral_received", "2026-03-02", worker_id="W-1", team_id="T-1")]
    assert open_periods(log) == (OpenPeriod(local("2026-03-02"), None, "W-1", "T-1"),)


def test_a_reallocation_ends_one_period_and_starts_the_next() -> None:
    log = [
        event("referral_received", "2026-03-02", worker_id="W-1", team_id="T-1"),
        event("case_allocated", "2026-03-09", worker_id="W-2"),
    ]
    assert open_periods(log) == (
        OpenPeriod(local("2026-03-02"), local("2026-03-09"), "W-1", "T-1"),
        OpenPeriod(local("2026-03-09"), None, "W-2", "T-1"),
    )


def test_an_event_naming_the_same_allocation_changes_nothing() -> None:
    log = [
        event("referral_received", "2026-03-02", worker_id="W-1", team_id="T-1"),
        event("contact_made", "2026-03-03", worker_id="W-1"),
    ]
    assert len(open_periods(log)) == 1


def test_a_closed_case_counts_in_no_caseload_until_it_is_reopened() -> None:
    log = [
        event("referral_received", "2026-03-02", worker_id="W-1", team_id="T-1"),
        event("case_closed", "2026-04-01"),
        event("contact_made", "2026-04-10"),
        event("case_reopened", "2026-05-04", worker_id="W-3"),
    ]
    assert open_periods(log) == (
        OpenPeriod(local("2026-03-02"), local("2026-04-01"), "W-1", "T-1"),
        OpenPeriod(local("2026-05-04"), None, "W-3", "T-1"),
    )


def test_an_allocation_made_at_the_opening_instant_is_the_periods_allocation() -> None:
    log = [
        event("referral_received", "2026-03-02", worker_id="W-1"),
        event("case_allocated", "2026-03-02", worker_id="W-2", team_id="T-2"),
    ]
    assert open_periods(log) == (OpenPeriod(local("2026-03-02"), None, "W-2", "T-2"),)
