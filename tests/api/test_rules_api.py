"""The rules API: read the active ruleset, validate a candidate, activate one and re-derive."""

from __future__ import annotations

import json
from typing import Any

import httpx
from conftest import Tenant

from service.domain.rules import builtin_ruleset_text

TOML = {"Content-Type": "application/toml"}
JSON = {"Content-Type": "application/json"}
CHILDREN_RULES = [
    "referral-decision",
    "first-contact",
    "assessment-completion",
    "initial-cp-conference",
    "core-group",
    "cp-review",
    "cp-visit",
    "cla-review",
    "cla-visit",
    "pathway-plan-review",
    "scheduled-task",
]
REFERRAL = {
    "id": "ref",
    "type": "referral_received",
    "case_id": "C-1",
    "occurred_at": "2026-11-02T10:15:00Z",
}
# TOML puts keys after a table header into that table, so top-level keys come first.
FAMILY_MEETING_TOML = """\
event_types = ["family_meeting_requested", "family_meeting_held"]

[calendar]
region = "england-and-wales"
timezone = "Europe/London"

[[rules]]
id = "family-meeting"
name = "Family meeting within 10 working days of the request"
source = "Local practice standard"
starts_on = ["family_meeting_requested"]
due = "10 working days"
met_by = ["family_meeting_held"]
cancelled_by = ["case_closed"]
"""
BAD_TOML = """\
[calendar]
region = "england-and-wales"

[[rules]]
id = "referral-decision"
name = "Referral decision"
source = "Working Together 2023"
starts_on = ["referral_received"]
due = "1 fortnight"
met_by = ["referral_decision_made"]
"""


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def children_with_assessment_due(due: str) -> str:
    text = builtin_ruleset_text("england-children")
    assert text.count('due = "45 working days"') == 1
    return text.replace('due = "45 working days"', f'due = "{due}"')


async def assessment_due(tenant: Tenant) -> str:
    response = await tenant.reader.get(
        "/v1/obligations", params={"rule_id": "assessment-completion"}
    )
    (obligation,) = response.json()["items"]
    due: str = obligation["due_at"]
    return due


# Reading


async def test_the_active_ruleset_defaults_to_england_children(tenant: Tenant) -> None:
    body = (await tenant.reader.get("/v1/rules")).json()
    assert body["id"] == "england-children"
    assert body["source"] == "builtin"
    assert [r["id"] for r in body["rules"]] == CHILDREN_RULES


async def test_the_active_ruleset_shows_its_calendar(tenant: Tenant) -> None:
    calendar = (await tenant.reader.get("/v1/rules")).json()["calendar"]
    assert calendar == {"region": "england-and-wales", "timezone": "Europe/London", "closures": []}


async def test_a_rule_is_shown_in_the_shape_that_defines_it(tenant: Tenant) -> None:
    rules = {r["id"]: r for r in (await tenant.reader.get("/v1/rules")).json()["rules"]}
    assessment = rules["assessment-completion"]
    assert assessment["due"] == "45 working days"
    assert assessment["starts_on"] == ["referral_received"]
    assert assessment["met_by"] == ["assessment_completed"]
    assert assessment["cancelled_by"] == [
        "case_closed",
        {
            "type": "referral_decision_made",
            "where": {"outcome": ["early_help", "no_further_action"]},
        },
    ]


async def test_the_rulesets_list_holds_both_built_ins(tenant: Tenant) -> None:
    items = (await tenant.reader.get("/v1/rulesets")).json()["items"]
    assert [r["id"] for r in items] == ["england-children", "england-adults"]
    adults = {r["id"] for r in items[1]["rules"]}
    assert adults == {"care-plan-review", "safeguarding-decision", "scheduled-task"}


# Validating


async def test_validating_good_toml_returns_the_parsed_rules(tenant: Tenant) -> None:
    response = await tenant.reader.post(
        "/v1/rules/validate", content=FAMILY_MEETING_TOML, headers=TOML
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is True
    assert [r["id"] for r in body["ruleset"]["rules"]] == ["family-meeting"]
    assert body["ruleset"]["event_types"] == ["family_meeting_held", "family_meeting_requested"]


async def test_validating_does_not_activate(tenant: Tenant) -> None:
    await tenant.admin.post("/v1/rules/validate", content=FAMILY_MEETING_TOML, headers=TOML)
    assert (await tenant.reader.get("/v1/rules")).json()["source"] == "builtin"


async def test_an_invalid_ruleset_is_a_422_with_pointer_and_line(tenant: Tenant) -> None:
    body = problem(await tenant.reader.post("/v1/rules/validate", content=BAD_TOML, headers=TOML))
    (error,) = body["errors"]
    assert error["pointer"] == "/rules/0/due"
    assert error["line"] == 9


async def test_every_error_in_a_ruleset_is_reported_at_once(tenant: Tenant) -> None:
    text = BAD_TOML.replace('starts_on = ["referral_received"]', 'starts_on = ["referal"]')
    body = problem(await tenant.reader.post("/v1/rules/validate", content=text, headers=TOML))
    assert {(e["pointer"], e["line"]) for e in body["errors"]} == {
        ("/rules/0/starts_on/0", 8),
        ("/rules/0/due", 9),
    }


async def test_a_toml_rule_without_due_is_refused_naming_the_rule(tenant: Tenant) -> None:
    text = FAMILY_MEETING_TOML.replace('due = "10 working days"\n', "")
    body = problem(await tenant.admin.put("/v1/rules", content=text, headers=TOML))
    (error,) = body["errors"]
    assert error["pointer"] == "/rules/0/due"
    assert error["rule_id"] == "family-meeting"
    assert error["line"] == 7  # the rule's [[rules]] header: there is no due line to point at
    assert error["detail"].startswith("rule 'family-meeting', due: is required")


async def test_a_json_rule_without_due_is_refused_naming_the_rule_and_line(
    tenant: Tenant,
) -> None:
    rule = {
        "id": "family-meeting",
        "name": "Family meeting",
        "source": "Local practice standard",
        "starts_on": ["referral_received"],
        "met_by": ["contact_made"],
    }
    text = json.dumps({"rules": [rule]}, indent=2)
    body = problem(await tenant.admin.put("/v1/rules", content=text, headers=JSON))
    (error,) = body["errors"]
    assert error["pointer"] == "/rules/0/due"
    assert error["rule_id"] == "family-meeting"
    assert error["line"] == 3  # the rule's opening brace, after '{' and '"rules": ['
    assert error["detail"].startswith("rule 'family-meeting', due: is required")


async def test_a_json_error_is_located_at_the_line_of_its_key(tenant: Tenant) -> None:
    response = await tenant.reader.post(
        "/v1/rules/validate", content=FAMILY_MEETING_TOML, headers=TOML
    )
    ruleset = response.json()["ruleset"]
    ruleset["rules"][0]["warn_before"] = "a little while"
    text = json.dumps(ruleset, indent=2)
    body = problem(await tenant.reader.post("/v1/rules/validate", content=text, headers=JSON))
    (error,) = body["errors"]
    assert error["pointer"] == "/rules/0/warn_before"
    assert error["line"] == text.splitlines().index('      "warn_before": "a little while"') + 1
    assert error["rule_id"] == "family-meeting"


async def test_a_toml_ruleset_with_a_duration_over_ten_years_is_refused_naming_the_rule(
    tenant: Tenant,
) -> None:
    text = children_with_assessment_due("100000 months")
    body = problem(await tenant.admin.put("/v1/rules", content=text, headers=TOML))
    (error,) = body["errors"]
    assert error["pointer"] == "/rules/2/due"
    assert error["rule_id"] == "assessment-completion"
    assert error["line"] == text.splitlines().index('due = "100000 months"') + 1
    assert error["detail"] == (
        "rule 'assessment-completion', due: "
        "100000 months is too long: at most 120 months (about ten years)"
    )


async def test_a_json_ruleset_with_a_duration_over_ten_years_is_refused_naming_the_rule(
    tenant: Tenant,
) -> None:
    rule = {
        "id": "family-meeting",
        "name": "Family meeting",
        "source": "Local practice standard",
        "starts_on": ["referral_received"],
        "due": "2000000 working days",
        "met_by": ["contact_made"],
    }
    body = problem(
        await tenant.admin.put("/v1/rules", content=json.dumps({"rules": [rule]}), headers=JSON)
    )
    (error,) = body["errors"]
    assert (error["pointer"], error["rule_id"], error["line"]) == (
        "/rules/0/due",
        "family-meeting",
        1,
    )
    assert "2000000 working days is too long" in error["detail"]
    assert (await tenant.reader.get("/v1/rules")).json()["source"] == "builtin"


async def test_a_toml_syntax_error_is_located_by_line(tenant: Tenant) -> None:
    text = '[calendar]\nregion = "england-and-wales"\n\n[[rules]\nid = "x"\n'
    body = problem(await tenant.reader.post("/v1/rules/validate", content=text, headers=TOML))
    assert body["errors"][0]["line"] == 4


async def test_a_json_syntax_error_is_located_by_line(tenant: Tenant) -> None:
    text = '{\n  "rules": [\n    {"id": }\n  ]\n}'
    body = problem(await tenant.reader.post("/v1/rules/validate", content=text, headers=JSON))
    assert body["errors"][0]["line"] == 3


async def test_a_ruleset_that_is_not_utf8_is_refused(tenant: Tenant) -> None:
    content = FAMILY_MEETING_TOML.replace("Local practice", "Caf\u00e9").encode("latin-1")
    body = problem(await tenant.reader.post("/v1/rules/validate", content=content, headers=TOML))
    assert "UTF-8" in body["errors"][0]["detail"]


async def test_a_ruleset_without_rules_is_invalid(tenant: Tenant) -> None:
    text = '[calendar]\nregion = "england-and-wales"\n'
    body = problem(await tenant.reader.post("/v1/rules/validate", content=text, headers=TOML))
    assert [e["pointer"] for e in body["errors"]] == ["/rules"]


async def test_a_rule_naming_an_undeclared_event_type_is_invalid(tenant: Tenant) -> None:
    text = FAMILY_MEETING_TOML.replace(
        'event_types = ["family_meeting_requested", "family_meeting_held"]',
        'event_types = ["family_meeting_requested"]',
    )
    body = problem(await tenant.reader.post("/v1/rules/validate", content=text, headers=TOML))
    assert [e["pointer"] for e in body["errors"]] == ["/rules/0/met_by/0"]


# Activating


async def test_putting_toml_reports_the_activated_ruleset(tenant: Tenant) -> None:
    response = await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["source"] == "custom"
    assert [r["id"] for r in body["rules"]] == ["family-meeting"]


async def test_putting_a_ruleset_answers_with_its_activation_to_poll(tenant: Tenant) -> None:
    response = await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)

    activation = response.json()["activation"]
    assert response.headers["location"] == f"/v1/rules/activations/{activation['id']}"
    assert activation["state"] == "queued"
    polled = await tenant.reader.get(response.headers["location"])
    assert polled.json() == activation


async def test_an_activation_is_done_once_every_open_case_is_rederived(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    await tenant.writer.post("/v1/events", json={**REFERRAL, "id": "r2", "case_id": "C-2"})
    response = await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)

    activation = (await tenant.activate(response))["activation"]

    assert (activation["state"], activation["cases_done"], activation["cases_total"]) == (
        "done",
        2,
        2,
    )


async def test_an_unknown_activation_is_a_404_problem(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/rules/activations/act_nothing")

    assert response.status_code == 404


async def test_putting_toml_makes_it_the_active_ruleset(tenant: Tenant) -> None:
    await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)
    body = (await tenant.reader.get("/v1/rules")).json()
    assert body["source"] == "custom"
    assert [r["id"] for r in body["rules"]] == ["family-meeting"]


async def test_a_shorter_timescale_moves_the_due_date_of_open_cases(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    assert await assessment_due(tenant) == "2027-01-07T23:59:59.999999Z"
    text = children_with_assessment_due("20 working days")
    response = await tenant.admin.put("/v1/rules", content=text, headers=TOML)
    assert (await tenant.activate(response))["activation"]["cases_done"] == 1
    assert await assessment_due(tenant) == "2026-11-30T23:59:59.999999Z"


async def test_a_closure_day_added_by_the_ruleset_moves_due_dates(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    text = builtin_ruleset_text("england-children").replace(
        "closures = []", 'closures = ["2026-11-03"]'
    )
    await tenant.activate(await tenant.admin.put("/v1/rules", content=text, headers=TOML))
    response = await tenant.reader.get("/v1/obligations", params={"rule_id": "referral-decision"})
    assert response.json()["items"][0]["due_at"] == "2026-11-04T23:59:59.999999Z"


async def test_new_events_follow_the_activated_ruleset(tenant: Tenant) -> None:
    text = children_with_assessment_due("20 working days")
    await tenant.admin.put("/v1/rules", content=text, headers=TOML)
    await tenant.writer.post("/v1/events", json=REFERRAL)
    assert await assessment_due(tenant) == "2026-11-30T23:59:59.999999Z"


async def test_putting_json_activates_it_and_rederives(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    ruleset = {
        "calendar": {"region": "england-and-wales", "timezone": "Europe/London"},
        "rules": [
            {
                "id": "referral-decision",
                "name": "Referral decision within 2 working days",
                "source": "Local standard",
                "starts_on": ["referral_received"],
                "due": "2 working days",
                "met_by": ["referral_decision_made"],
                "cancelled_by": ["case_closed"],
            }
        ],
    }
    await tenant.activate(
        await tenant.admin.put("/v1/rules", content=json.dumps(ruleset), headers=JSON)
    )
    items = (await tenant.reader.get("/v1/obligations")).json()["items"]
    assert [(o["rule_id"], o["due_at"], o["rule_name"]) for o in items] == [
        (
            "referral-decision",
            "2026-11-04T23:59:59.999999Z",
            "Referral decision within 2 working days",
        )
    ]


async def test_a_json_ruleset_survives_being_read_back_on_the_next_request(
    tenant: Tenant,
) -> None:
    ruleset = {
        "rules": [
            {
                "id": "first-contact",
                "name": "First contact",
                "source": "Local standard",
                "starts_on": ["referral_received"],
                "due": "5 days",
                "met_by": ["contact_made"],
            }
        ]
    }
    await tenant.admin.put("/v1/rules", content=json.dumps(ruleset), headers=JSON)
    await tenant.writer.post("/v1/events", json=REFERRAL)
    items = (await tenant.reader.get("/v1/obligations")).json()["items"]
    assert [(o["rule_id"], o["due_at"]) for o in items] == [
        ("first-contact", "2026-11-07T23:59:59.999999Z")
    ]


async def test_putting_a_builtin_name_switches_to_that_ruleset(tenant: Tenant) -> None:
    response = await tenant.admin.put(
        "/v1/rules", content='{"builtin": "england-adults"}', headers=JSON
    )
    assert response.status_code == 202, response.text
    body = (await tenant.reader.get("/v1/rules")).json()
    assert (body["id"], body["source"]) == ("england-adults", "builtin")


async def test_switching_to_adults_drops_children_obligations_of_open_cases(
    tenant: Tenant,
) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    await tenant.activate(
        await tenant.admin.put("/v1/rules", content='{"builtin": "england-adults"}', headers=JSON)
    )
    assert (await tenant.reader.get("/v1/obligations")).json()["items"] == []


async def test_switching_back_to_a_builtin_restores_its_obligations(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    before = (await tenant.reader.get("/v1/obligations")).json()["items"]
    await tenant.activate(
        await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)
    )
    await tenant.activate(
        await tenant.admin.put("/v1/rules", content='{"builtin": "england-children"}', headers=JSON)
    )
    assert (await tenant.reader.get("/v1/obligations")).json()["items"] == before


async def test_an_unknown_builtin_name_is_refused(tenant: Tenant) -> None:
    response = await tenant.admin.put(
        "/v1/rules", content='{"builtin": "scotland-children"}', headers=JSON
    )
    problem(response)


async def test_an_invalid_ruleset_is_not_activated(tenant: Tenant) -> None:
    problem(await tenant.admin.put("/v1/rules", content=BAD_TOML, headers=TOML))
    assert (await tenant.reader.get("/v1/rules")).json()["source"] == "builtin"


async def test_an_event_type_declared_by_the_ruleset_becomes_accepted(tenant: Tenant) -> None:
    request = {**REFERRAL, "id": "req", "type": "family_meeting_requested"}
    refused = await tenant.writer.post("/v1/events", json=request)
    assert refused.status_code == 422
    await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)
    accepted = await tenant.writer.post("/v1/events", json=request)
    assert accepted.status_code == 201, accepted.text
    items = (await tenant.reader.get("/v1/obligations")).json()["items"]
    assert [(o["rule_id"], o["due_at"]) for o in items] == [
        ("family-meeting", "2026-11-16T23:59:59.999999Z")
    ]


async def test_the_unknown_type_error_lists_the_rulesets_own_types(tenant: Tenant) -> None:
    await tenant.admin.put("/v1/rules", content=FAMILY_MEETING_TOML, headers=TOML)
    response = await tenant.writer.post("/v1/events", json={**REFERRAL, "type": "nonsense"})
    assert "family_meeting_held" in problem(response)["errors"][0]["detail"]


async def test_closed_cases_are_not_rederived(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    close = {**REFERRAL, "id": "close", "type": "case_closed", "occurred_at": "2026-11-03"}
    await tenant.writer.post("/v1/events", json=close)
    response = await tenant.admin.put(
        "/v1/rules", content=children_with_assessment_due("20 working days"), headers=TOML
    )
    assert (await tenant.activate(response))["activation"]["cases_done"] == 0
