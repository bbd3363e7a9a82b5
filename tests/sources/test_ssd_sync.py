"""Syncing a Standard Safeguarding Dataset: a real PostgreSQL schema shaped like the SSD, rows
made here, synced into caseclock (SQLite or PostgreSQL) through the API and the background job.

Now is Friday 20 November 2026, noon. Due days are counted by hand from the statutes and the
published bank holidays for England: none fall in October or November 2026; Christmas Day is
Friday 25 December 2026, Boxing Day's substitute Monday 28 December, New Year's Day Friday
1 January 2027.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from conftest import Tenant
from sqlalchemy import func, select
from ssd_schema import SsdDatabase, reachable, server_url

from service.store.db import transaction
from service.store.tables import alerts, case_periods, events


@pytest.fixture
async def ssd() -> AsyncIterator[SsdDatabase]:
    """An SSD schema of the test's own on PostgreSQL."""
    url = server_url()
    if not await reachable(url):
        pytest.skip("no PostgreSQL reachable for the SSD schema")
    database = await SsdDatabase.create(url)
    yield database
    await database.drop()


def day(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def configure(tenant: Tenant, ssd: SsdDatabase, **settings: Any) -> None:
    response = await tenant.admin.put(
        "/v1/sources/ssd",
        json={"database_url": ssd.source_url, "schema": ssd.schema, **settings},
    )
    assert response.status_code == 200, response.text


async def sync(tenant: Tenant) -> dict[str, Any]:
    """Sync now and run the job; the finished sync."""
    response = await tenant.writer.post("/v1/sources/ssd/sync")
    assert response.status_code == 202, response.text
    await tenant.run_jobs()
    polled = await tenant.reader.get(response.headers["location"])
    body: dict[str, Any] = polled.json()
    return body


async def synced(tenant: Tenant) -> dict[str, Any]:
    body = await sync(tenant)
    assert body["state"] == "done", body
    report: dict[str, Any] = body["report"]
    return report


async def obligations(tenant: Tenant, case_id: str, rule_id: str) -> list[dict[str, Any]]:
    response = await tenant.reader.get(
        "/v1/obligations", params={"case_id": case_id, "rule_id": rule_id}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return sorted(found, key=lambda o: o["sequence"])


def local_day(instant: str) -> date:
    """The local day a deadline falls due (due_at is the end of that day)."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(instant).astimezone(ZoneInfo("Europe/London")).date()


def table(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["tables"] if t["table"] == name)


async def referral(ssd: SsdDatabase, child: str, key: str, on: str, **more: Any) -> None:
    await ssd.insert(
        "ssd_cin_episodes",
        [{"cine_referral_id": key, "cine_person_id": child, "cine_referral_date": day(on), **more}],
    )


async def plan(ssd: SsdDatabase, child: str, key: str, start: str) -> None:
    await ssd.insert(
        "ssd_cp_plans",
        [{"cppl_cp_plan_id": key, "cppl_person_id": child, "cppl_cp_plan_start_date": day(start)}],
    )


async def visit(ssd: SsdDatabase, child: str, key: str, on: str, seen: str = "Y") -> None:
    await ssd.insert(
        "ssd_cp_visits",
        [
            {
                "cppv_cp_visit_id": key,
                "cppv_person_id": child,
                "cppv_cp_plan_id": "-1",
                "cppv_cp_visit_date": day(on),
                "cppv_cp_visit_seen": seen,
            }
        ],
    )


# Deadlines from the SSD --------------------------------------------------------------------


async def test_a_referral_opens_its_assessment_deadline_45_working_days_on(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await referral(ssd, "C1", "R1", "2026-11-02")
    await synced(tenant)
    (assessment,) = await obligations(tenant, "C1", "assessment-completion")
    # 45 working days from Monday 2 November 2026, passing over Christmas Day, Boxing Day's
    # substitute (28 December) and New Year's Day: Thursday 7 January 2027.
    assert local_day(assessment["due_at"]) == date(2027, 1, 7)


async def test_a_visit_where_the_child_was_not_seen_does_not_meet_the_visit_deadline(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C2", "P2", "2026-11-02")
    await visit(ssd, "C2", "V2", "2026-11-10", seen="N")
    await synced(tenant)
    (first,) = await obligations(tenant, "C2", "cp-visit")
    # 10 working days from Monday 2 November: Monday 16 November, unmet.
    assert local_day(first["due_at"]) == date(2026, 11, 16)
    assert first["status"] == "overdue"
    assert first["met_at"] is None


async def test_a_visit_where_the_child_was_seen_meets_it_and_the_next_is_due_10_working_days_on(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C3", "P3", "2026-11-02")
    await visit(ssd, "C3", "V3", "2026-11-10", seen="Y")
    await synced(tenant)
    first, second = await obligations(tenant, "C3", "cp-visit")
    assert first["status"] == "met"
    # 10 working days from Tuesday 10 November: Tuesday 24 November.
    assert local_day(second["due_at"]) == date(2026, 11, 24)


async def test_a_cancelled_looked_after_review_meets_nothing(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await ssd.insert(
        "ssd_cla_episodes",
        [
            {
                "clae_cla_episode_id": "E4",
                "clae_person_id": "C4",
                "clae_cla_id": "CLA4",
                "clae_cla_episode_start_date": day("2026-10-05"),
                "clae_entered_care_date": day("2026-10-05"),
            }
        ],
    )
    await ssd.insert(
        "ssd_cla_reviews",
        [
            {
                "clar_cla_review_id": "RV4",
                "clar_cla_id": "CLA4",
                "clar_cla_review_date": day("2026-10-30"),
                "clar_cla_review_cancelled": "Y",
            }
        ],
    )
    await synced(tenant)
    (first,) = await obligations(tenant, "C4", "cla-review")
    # Regulation 33: 20 working days from Monday 5 October 2026: Monday 2 November.
    assert local_day(first["due_at"]) == date(2026, 11, 2)
    assert first["status"] == "overdue"


async def test_the_none_sentinels_minus_one_and_1900_01_01_mean_none(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd, worker_key="professional_id")
    # A closure dated 1900-01-01 is no closure: the case stays open, its deadline too.
    await referral(ssd, "C5", "R5", "2026-11-02", cine_close_date=day("1900-01-01"))
    # A team of -1 is no team: the worker alone is allocated.
    await ssd.insert(
        "ssd_involvements",
        [
            {
                "invo_involvements_id": "I5",
                "invo_professional_id": "P-55",
                "invo_professional_role_id": "CW",
                "invo_professional_team": "-1",
                "invo_person_id": "C5",
                "invo_involvement_start_date": day("2026-11-02"),
            }
        ],
    )
    report = await synced(tenant)
    case = (await tenant.reader.get("/v1/cases/C5")).json()
    assert case["status"] == "open"
    assert (case["worker_id"], case["team_id"]) == ("P-55", None)
    (assessment,) = await obligations(tenant, "C5", "assessment-completion")
    assert assessment["status"] != "cancelled"
    assert report["rejected_total"] == 0


async def test_the_obligations_move_to_a_new_worker_from_the_day_of_the_change(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await ssd.insert("ssd_department", [{"dept_team_id": "T1", "dept_team_name": "North"}])
    await ssd.insert(
        "ssd_professionals",
        [
            {"prof_professional_id": "P1", "prof_staff_id": "S1", "prof_professional_name": "A"},
            {"prof_professional_id": "P2", "prof_staff_id": "S2", "prof_professional_name": "B"},
        ],
    )
    await plan(ssd, "C6", "P6", "2026-11-02")

    def involvement(key: str, professional: str, start: str, role: str = "CW") -> dict[str, Any]:
        return {
            "invo_involvements_id": key,
            "invo_professional_id": professional,
            "invo_professional_role_id": role,
            "invo_professional_team": "T1",
            "invo_person_id": "C6",
            "invo_involvement_start_date": day(start),
        }

    await ssd.insert(
        "ssd_involvements",
        [
            involvement("I61", "P1", "2026-10-01"),
            involvement("I62", "P2", "2026-11-09"),
            # Another role (an independent reviewing officer) allocates nothing.
            involvement("I63", "P1", "2026-11-12", role="IRO"),
        ],
    )
    await synced(tenant)
    visits = await obligations(tenant, "C6", "cp-visit")
    assert {o["worker_id"] for o in visits} == {"S2"}
    async with transaction(tenant.app.state.session_factory) as session:
        periods = (
            await session.execute(
                select(case_periods.c.worker_id, case_periods.c.starts_at)
                .where(case_periods.c.org_id == tenant.org_id, case_periods.c.case_id == "C6")
                .order_by(case_periods.c.starts_at)
            )
        ).all()
    assert [(p.worker_id, local_day(p.starts_at.isoformat())) for p in periods] == [
        ("S1", date(2026, 10, 1)),
        ("S2", date(2026, 11, 9)),
    ]


# Snapshots ---------------------------------------------------------------------------------


async def test_a_second_sync_replaces_a_changed_row_and_voids_a_vanished_one(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C7", "P7", "2026-11-02")
    await visit(ssd, "C7", "V71", "2026-11-10")
    await visit(ssd, "C7", "V72", "2026-11-12")
    await synced(tenant)
    await ssd.update("ssd_cp_visits", "V71", cppv_cp_visit_date=day("2026-11-11"))
    await ssd.delete("ssd_cp_visits", "V72")

    report = await synced(tenant)

    visits = table(report, "ssd_cp_visits")
    assert (visits["created"], visits["replaced"], visits["voided"]) == (0, 1, 1)
    assert {(v["key"], v["reason"]) for v in report["voided"]} == {
        ("V71", "changed"),
        ("V72", "gone"),
    }
    first, second = await obligations(tenant, "C7", "cp-visit")
    assert local_day(first["met_at"]) == date(2026, 11, 11)
    assert first["met_by_event"] == "ssd:cppv:V71:child_visited~2"
    # 10 working days from Wednesday 11 November: Wednesday 25 November.
    assert local_day(second["due_at"]) == date(2026, 11, 25)


async def test_a_row_changed_back_gets_a_revision_of_its_own(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C8", "P8", "2026-11-02")
    await visit(ssd, "C8", "V8", "2026-11-10")
    await synced(tenant)
    await ssd.update("ssd_cp_visits", "V8", cppv_cp_visit_date=day("2026-11-11"))
    await synced(tenant)
    await ssd.update("ssd_cp_visits", "V8", cppv_cp_visit_date=day("2026-11-10"))
    await synced(tenant)
    (first, _) = await obligations(tenant, "C8", "cp-visit")
    assert first["met_by_event"] == "ssd:cppv:V8:child_visited~3"
    assert local_day(first["met_at"]) == date(2026, 11, 10)


async def test_an_unchanged_snapshot_changes_nothing_and_raises_no_alert(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C9", "P9", "2026-11-02")
    await visit(ssd, "C9", "V9", "2026-11-10")
    await synced(tenant)
    before = await _completed_alerts(tenant)

    report = await synced(tenant)

    assert all(t["created"] == t["replaced"] == t["voided"] == 0 for t in report["tables"])
    assert table(report, "ssd_cp_visits")["unchanged"] == 1
    assert await _completed_alerts(tenant) == before


async def test_a_sync_that_changed_something_raises_one_summary_alert(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C10", "P10", "2026-11-02")
    await synced(tenant)
    assert await _completed_alerts(tenant) == 1


async def test_a_table_emptied_by_a_rebuild_stops_the_sync_before_anything_is_voided(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C11", "P11", "2026-11-02")
    await visit(ssd, "C11", "V11", "2026-11-10")
    await synced(tenant)
    await ssd.truncate("ssd_cp_visits")

    failed = await sync(tenant)

    assert failed["state"] == "failed"
    assert "ssd_cp_visits is empty" in failed["problem"]["detail"]
    assert await _live_ssd_events(tenant, "C11") == 2


async def test_events_of_other_sources_are_never_touched(tenant: Tenant, ssd: SsdDatabase) -> None:
    await configure(tenant, ssd)
    await plan(ssd, "C12", "P12", "2026-11-02")
    posted = await tenant.writer.post(
        "/v1/events",
        json={
            "id": "cms-visit-1",
            "type": "child_visited",
            "case_id": "C12",
            "occurred_at": "2026-11-05T10:00:00Z",
        },
    )
    assert posted.status_code in (200, 201), posted.text
    await synced(tenant)
    await ssd.delete("ssd_cp_plans", "P12")
    await plan(ssd, "C99", "P99", "2026-11-02")  # the table keeps a row
    await synced(tenant)
    case = (await tenant.reader.get("/v1/cases/C12")).json()
    live = [e["id"] for e in case["events"] if e["voided_at"] is None]
    assert live == ["cms-visit-1"]


async def test_a_second_sync_asked_for_while_one_is_queued_is_that_one(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    first = await tenant.writer.post("/v1/sources/ssd/sync")
    second = await tenant.writer.post("/v1/sources/ssd/sync")
    assert first.json()["id"] == second.json()["id"]
    await tenant.run_jobs()


async def test_what_the_ssd_cannot_give_is_reported_as_not_evaluable(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await referral(ssd, "C13", "R13", "2026-11-02")
    await plan(ssd, "C13", "P13", "2026-11-03")
    report = await synced(tenant)
    reasons = {n["rule_id"]: n["reason"] for n in report["rules_not_evaluable"]}
    assert "referral_decision_made" in reasons["referral-decision"]
    assert "core_group_held" in reasons["core-group"]
    assert "latest pathway plan review" in reasons["pathway-plan-review"]
    rules = {o["rule_id"] for o in (await tenant.reader.get("/v1/cases/C13")).json()["obligations"]}
    assert rules.isdisjoint({"referral-decision", "core-group", "first-contact"})


async def test_names_dates_of_birth_and_outcome_text_are_never_read(
    tenant: Tenant, ssd: SsdDatabase
) -> None:
    await configure(tenant, ssd)
    await ssd.insert(
        "ssd_person",
        [{"pers_person_id": "C14", "pers_forename": "Zebedee", "pers_dob": day("2015-03-04")}],
    )
    await referral(
        ssd, "C14", "R14", "2026-11-02", cine_referral_outcome_json='{"note": "Zebedee"}'
    )
    report = await synced(tenant)
    async with transaction(tenant.app.state.session_factory) as session:
        stored = (
            await session.execute(
                select(events.c.id, events.c.data).where(events.c.org_id == tenant.org_id)
            )
        ).all()
    assert "Zebedee" not in repr(stored) + repr(report)
    assert "2015-03-04" not in repr(stored) + repr(report)


# Settings ----------------------------------------------------------------------------------


async def test_the_database_password_is_never_shown(tenant: Tenant) -> None:
    put = await tenant.admin.put(
        "/v1/sources/ssd",
        json={"database_url": "postgresql://reader:s3cret-pw@127.0.0.1:1/la", "schedule": None},
    )
    shown = await tenant.reader.get("/v1/sources/ssd")
    failed = await sync(tenant)
    assert put.json()["database_url"] == "postgresql://reader:***@127.0.0.1:1/la"
    assert shown.json()["database_url"] == "postgresql://reader:***@127.0.0.1:1/la"
    assert failed["state"] == "failed"
    assert "s3cret-pw" not in repr(put.json()) + repr(shown.json()) + repr(failed)


async def test_a_source_needs_a_database_or_a_path(tenant: Tenant) -> None:
    response = await tenant.admin.put("/v1/sources/ssd", json={"schema": "ssd_development"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_only_an_admin_key_configures_the_source(tenant: Tenant) -> None:
    response = await tenant.writer.put("/v1/sources/ssd", json={"path": "/nowhere"})
    assert response.status_code == 403


async def _completed_alerts(tenant: Tenant) -> int:
    async with transaction(tenant.app.state.session_factory) as session:
        count: int = (
            await session.execute(
                select(func.count()).where(
                    alerts.c.org_id == tenant.org_id, alerts.c.type == "import.completed"
                )
            )
        ).scalar_one()
    return count


async def _live_ssd_events(tenant: Tenant, case_id: str) -> int:
    async with transaction(tenant.app.state.session_factory) as session:
        count: int = (
            await session.execute(
                select(func.count()).where(
                    events.c.org_id == tenant.org_id,
                    events.c.case_id == case_id,
                    events.c.voided_at.is_(None),
                )
            )
        ).scalar_one()
    return count
