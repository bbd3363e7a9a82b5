"""What the API accepts it stores and reads back exactly, on SQLite as on PostgreSQL; anything
else is a 422 problem naming the field: `data` that is too deep or too large, numbers JSON
cannot carry, text holding NUL or unpaired surrogates, unknown top-level keys."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from conftest import Tenant
from imports.workbooks import annex_a_sheet, build_workbook

from service.domain.rules import builtin_ruleset_text

PUBLIC_URL = "https://93.184.215.14/caseclock-hooks"
NUL_REFUSED = "must not contain NUL characters"
SURROGATE_REFUSED = "must not contain unpaired surrogates (U+D800 to U+DFFF)"


def referral(event_id: str = "ev-1", case_id: str = "C-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-02T10:15:00Z",
        **fields,
    }


async def post_json(client: httpx.AsyncClient, path: str, body: object) -> httpx.Response:
    """POST `body` as JSON text a client could send but httpx would not write itself: NaN and
    Infinity as bare words, lone surrogates as `\\udfff` escapes."""
    text = json.dumps(body)  # ASCII only, so every surrogate is written as an escape
    return await client.post(path, content=text, headers={"content-type": "application/json"})


def problem(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def nested(depth: int) -> object:
    """A list `depth` containers deep, counting the list itself."""
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def assert_nothing_stored(tenant: Tenant, case_id: str = "C-1") -> None:
    assert (await tenant.reader.get("/v1/events")).json()["items"] == []
    assert (await tenant.reader.get(f"/v1/cases/{case_id}")).status_code == 404


# Event data: refused where no database would give it back unchanged


async def test_a_lone_surrogate_in_data_is_refused_naming_its_key(tenant: Tenant) -> None:
    response = await post_json(tenant.writer, "/v1/events", referral(data={"n": "\udfff"}))
    body = problem(response)
    assert body["errors"] == [{"pointer": "/data/n", "detail": SURROGATE_REFUSED}]
    await assert_nothing_stored(tenant)


async def test_a_lone_surrogate_in_a_nested_key_is_refused_at_its_object(tenant: Tenant) -> None:
    data = {"notes": [{"\ud800": 1}]}
    body = problem(await post_json(tenant.writer, "/v1/events", referral(data=data)))
    assert body["errors"] == [
        {"pointer": "/data/notes/0", "detail": f"has a key that {SURROGATE_REFUSED}"}
    ]


async def test_a_lone_surrogate_in_a_top_level_data_key_is_refused_at_data(
    tenant: Tenant,
) -> None:
    body = problem(await post_json(tenant.writer, "/v1/events", referral(data={"\udfff": 1})))
    assert body["errors"] == [{"pointer": "/data", "detail": f"has a key that {SURROGATE_REFUSED}"}]
    await assert_nothing_stored(tenant)


async def test_a_lone_surrogate_in_an_event_id_is_refused(tenant: Tenant) -> None:
    body = problem(await post_json(tenant.writer, "/v1/events", referral(event_id="ev-\udfff")))
    assert body["errors"] == [{"pointer": "/id", "detail": SURROGATE_REFUSED}]


async def test_an_unknown_field_named_with_a_lone_surrogate_is_a_422(tenant: Tenant) -> None:
    body = problem(await post_json(tenant.writer, "/v1/events", {**referral(), "\udfff": 1}))
    assert body["errors"] == [{"pointer": "", "detail": SURROGATE_REFUSED}]


async def test_a_data_key_with_a_lone_surrogate_is_quoted_as_an_escape_where_it_is_named(
    tenant: Tenant,
) -> None:
    data = {"\udfff": "2200-01-01"}  # also past the calendar's horizon, which names the key
    body = problem(await post_json(tenant.writer, "/v1/events", referral(data=data)))
    assert {e["pointer"] for e in body["errors"]} == {"/data", "/data/\\udfff"}


async def test_a_batch_item_whose_id_holds_a_lone_surrogate_is_invalid_quoted_as_an_escape(
    tenant: Tenant,
) -> None:
    events = [referral("ev-\udfff")]
    response = await post_json(tenant.writer, "/v1/events/batch", {"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {
            "id": "ev-\\udfff",
            "status": "invalid",
            "errors": [{"pointer": "/events/0/id", "detail": SURROGATE_REFUSED}],
        }
    ]


async def test_arrays_nested_900_deep_in_data_are_refused(tenant: Tenant) -> None:
    response = await post_json(tenant.writer, "/v1/events", referral(data={"x": nested(900)}))
    body = problem(response)
    assert len(body["errors"]) == 1
    assert body["errors"][0]["pointer"] == "/data/x" + "/0" * 31
    assert body["errors"][0]["detail"] == "is nested more than 32 deep"
    await assert_nothing_stored(tenant)


async def test_data_nested_32_deep_is_accepted_and_reads_back(tenant: Tenant) -> None:
    data = {"x": nested(31)}  # `data` itself is the first level
    response = await post_json(tenant.writer, "/v1/events", referral(data=data))
    assert response.status_code == 201, response.text
    assert (await tenant.reader.get("/v1/events")).json()["items"][0]["data"] == data
    assert (await tenant.reader.get("/v1/cases/C-1")).json()["events"][0]["data"] == data


async def test_data_nested_33_deep_is_refused(tenant: Tenant) -> None:
    response = await post_json(tenant.writer, "/v1/events", referral(data={"x": nested(32)}))
    assert problem(response)["errors"][0]["detail"] == "is nested more than 32 deep"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_a_number_json_cannot_carry_is_refused_naming_its_key(
    tenant: Tenant, number: str
) -> None:
    text = json.dumps(referral(data={"score": 0})).replace('"score": 0', f'"score": {number}')
    response = await tenant.writer.post(
        "/v1/events", content=text, headers={"content-type": "application/json"}
    )
    body = problem(response)
    assert body["errors"] == [
        {"pointer": "/data/score", "detail": "must be a finite number, not NaN or Infinity"}
    ]
    await assert_nothing_stored(tenant)


def data_of_size(size: int) -> dict[str, str]:
    """`data` whose compact UTF-8 JSON is exactly `size` bytes; é is two bytes."""
    overhead = len('{"notes":""}')
    text = "é" * ((size - overhead) // 2) + "x" * ((size - overhead) % 2)
    data = {"notes": text}
    assert len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) == size
    return data


async def test_data_of_64_kib_is_accepted_and_reads_back(tenant: Tenant) -> None:
    data = data_of_size(64 * 1024)
    response = await tenant.writer.post("/v1/events", json=referral(data=data))
    assert response.status_code == 201, response.text
    assert (await tenant.reader.get("/v1/events")).json()["items"][0]["data"] == data


async def test_data_over_64_kib_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/events", json=referral(data=data_of_size(64 * 1024 + 1))
    )
    body = problem(response)
    assert body["errors"] == [
        {"pointer": "/data", "detail": "is 65537 bytes as JSON; at most 65536 (64 KiB)"}
    ]
    await assert_nothing_stored(tenant)


async def test_nul_in_a_data_value_is_refused_naming_its_place(tenant: Tenant) -> None:
    data = {"notes": ["fine", {"text": "a\x00b"}]}
    body = problem(await tenant.writer.post("/v1/events", json=referral(data=data)))
    assert body["errors"] == [{"pointer": "/data/notes/1/text", "detail": NUL_REFUSED}]
    await assert_nothing_stored(tenant)


async def test_nul_in_a_data_key_is_refused(tenant: Tenant) -> None:
    body = problem(await tenant.writer.post("/v1/events", json=referral(data={"a\x00": 1})))
    assert body["errors"] == [{"pointer": "/data", "detail": f"has a key that {NUL_REFUSED}"}]


async def test_a_data_key_holding_a_slash_is_located_by_an_escaped_pointer(
    tenant: Tenant,
) -> None:
    body = problem(await tenant.writer.post("/v1/events", json=referral(data={"a/b": "\x00"})))
    assert body["errors"] == [{"pointer": "/data/a~1b", "detail": NUL_REFUSED}]


async def test_a_batch_item_with_unstorable_data_is_invalid_and_the_rest_commit(
    tenant: Tenant,
) -> None:
    events = [referral("ev-1", "C-1"), referral("ev-2", "C-2", data={"x": float("nan")})]
    response = await post_json(tenant.writer, "/v1/events/batch", {"events": events})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0] == {"id": "ev-1", "status": "created"}
    assert results[1]["status"] == "invalid"
    assert [e["pointer"] for e in results[1]["errors"]] == ["/events/1/data/x"]
    assert [e["id"] for e in (await tenant.reader.get("/v1/events")).json()["items"]] == ["ev-1"]


# NUL in any text the API stores


async def test_a_webhook_description_holding_nul_is_refused(tenant: Tenant) -> None:
    body = {"url": PUBLIC_URL, "description": "ops\x00"}
    response = await tenant.admin.post("/v1/webhooks", json=body)
    assert problem(response)["errors"] == [{"pointer": "/description", "detail": NUL_REFUSED}]


@pytest.mark.parametrize("field", ["team_ids", "rule_ids"])
async def test_a_webhook_filter_holding_nul_is_refused(tenant: Tenant, field: str) -> None:
    body = {"url": PUBLIC_URL, field: ["fine", "T\x00"]}
    response = await tenant.admin.post("/v1/webhooks", json=body)
    assert problem(response)["errors"] == [{"pointer": f"/{field}/1", "detail": NUL_REFUSED}]


@pytest.mark.parametrize(
    ("field", "value"),
    [("description", "ops\x00"), ("team_ids", ["T\x00"]), ("rule_ids", ["r\x00"])],
)
async def test_patching_a_webhook_with_nul_is_refused_and_changes_nothing(
    tenant: Tenant, field: str, value: object
) -> None:
    created = await tenant.admin.post("/v1/webhooks", json={"url": PUBLIC_URL})
    assert created.status_code == 201, created.text
    path = f"/v1/webhooks/{created.json()['id']}"
    try:
        response = await tenant.admin.patch(path, json={field: value})
        assert problem(response)["errors"][0]["detail"] == NUL_REFUSED
        assert (await tenant.admin.get(path)).json()[field] is None
    finally:
        await tenant.admin.delete(path)


async def test_an_embed_token_for_a_team_id_holding_nul_is_refused(tenant: Tenant) -> None:
    body = {"team_id": "T-1\x00", "ttl_seconds": 3600}
    response = await tenant.admin.post("/v1/embed-tokens", json=body)
    assert problem(response)["errors"] == [{"pointer": "/team_id", "detail": NUL_REFUSED}]


async def test_a_void_reason_holding_nul_is_refused(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    response = await tenant.writer.post("/v1/events/ev-1/void", json={"reason": "typo\x00"})
    assert problem(response)["errors"] == [{"pointer": "/reason", "detail": NUL_REFUSED}]


async def test_an_event_type_holding_nul_is_refused(tenant: Tenant) -> None:
    body = problem(await tenant.writer.post("/v1/events", json=referral(type="referral\x00")))
    assert body["errors"] == [{"pointer": "/type", "detail": NUL_REFUSED}]


# Annex A workbooks: a cell's `_x0000_` escape reads as NUL


async def import_rows(tenant: Tenant, *rows: dict[str, object]) -> httpx.Response:
    return await tenant.writer.post(
        "/v1/imports/annex-a",
        params={"extracted_on": "2026-11-20"},
        content=build_workbook(annex_a_sheet(3, list(rows))),
        headers={
            "content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        },
    )


async def test_an_annex_a_child_id_holding_nul_leaves_its_row_out_and_the_rest_import(
    tenant: Tenant,
) -> None:
    referral = {"Date of referral": date(2026, 8, 14)}
    response = await import_rows(
        tenant, {"Child Unique ID": "C1_x0000_", **referral}, {"Child Unique ID": "C2", **referral}
    )
    [refused] = (await tenant.import_report(response))["rejected"]
    assert (refused["value"], refused["detail"]) == ("C1\N{SYMBOL FOR NULL}", NUL_REFUSED)
    stored = (await tenant.reader.get("/v1/events")).json()["items"]
    assert {event["case_id"] for event in stored} == {"C2"}


async def test_an_annex_a_worker_holding_nul_is_reported_and_read_as_empty(
    tenant: Tenant,
) -> None:
    row = {"Child Unique ID": "C1", "Date of referral": date(2026, 8, 14)}
    response = await import_rows(tenant, {**row, "Allocated Worker": "W_x0000_1"})
    [refused] = (await tenant.import_report(response))["rejected"]
    assert (refused["value"], refused["detail"]) == ("W\N{SYMBOL FOR NULL}1", NUL_REFUSED)
    case = (await tenant.reader.get("/v1/cases/C1")).json()
    assert case["worker_id"] is None


# Rulesets: their names and values are stored with every obligation and read back


def adults_with(old: str, new: str) -> str:
    text = builtin_ruleset_text("england-adults")
    assert old in text
    return text.replace(old, new, 1)


TOML = {"content-type": "application/toml"}


async def test_a_rule_name_holding_nul_is_refused(tenant: Tenant) -> None:
    name = 'name = "Care plan reviewed at 8 weeks, then at least every 12 months"'
    text = adults_with(name, 'name = "Care plan\\u0000 reviewed"')
    response = await tenant.admin.put("/v1/rules", content=text, headers=TOML)
    body = problem(response)
    assert [(e["pointer"], e["detail"]) for e in body["errors"]] == [("/rules/0/name", NUL_REFUSED)]
    assert (await tenant.reader.get("/v1/rules")).json()["source"] == "builtin"


async def test_a_matcher_value_that_is_not_a_finite_number_is_refused(tenant: Tenant) -> None:
    text = adults_with(
        'starts_on = ["care_plan_agreed"]',
        'starts_on = [{ type = "care_plan_agreed", where = { weight = nan } }]',
    )
    response = await tenant.admin.put("/v1/rules", content=text, headers=TOML)
    body = problem(response)
    assert [(e["pointer"], e["detail"]) for e in body["errors"]] == [
        ("/rules/0/starts_on/0/where/weight", "must be a finite number, not NaN or Infinity")
    ]


async def test_a_json_ruleset_holding_a_lone_surrogate_is_refused(tenant: Tenant) -> None:
    rule = {
        "id": "visit",
        "name": "Visit \udfff",
        "source": "local",
        "starts_on": ["referral_received"],
        "due": "5 working days",
        "met_by": ["child_seen"],
    }
    ruleset = {"calendar": {"region": "england-and-wales"}, "rules": [rule]}
    response = await post_json(tenant.admin, "/v1/rules/validate", ruleset)
    body = problem(response)
    assert [(e["pointer"], e["detail"]) for e in body["errors"]] == [
        ("/rules/0/name", SURROGATE_REFUSED)
    ]


# Unknown top-level keys are refused everywhere, as they are for a single event


async def test_a_batch_with_an_unknown_top_level_key_is_refused_and_stores_nothing(
    tenant: Tenant,
) -> None:
    body = {"events": [referral()], "dry_run": True}
    response = await tenant.writer.post("/v1/events/batch", json=body)
    assert [e["pointer"] for e in problem(response)["errors"]] == ["/dry_run"]
    await assert_nothing_stored(tenant)


async def test_an_embed_token_request_with_an_unknown_key_is_refused(tenant: Tenant) -> None:
    # A misspelt `team_id` must not quietly grant every team.
    response = await tenant.admin.post("/v1/embed-tokens", json={"team": "T-1", "ttl_seconds": 60})
    assert [e["pointer"] for e in problem(response)["errors"]] == ["/team"]


async def test_a_void_with_an_unknown_key_is_refused(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    body = {"reason": "entered twice", "voided_by": "W-1"}
    response = await tenant.writer.post("/v1/events/ev-1/void", json=body)
    assert [e["pointer"] for e in problem(response)["errors"]] == ["/voided_by"]
    assert (await tenant.reader.get("/v1/events")).json()["items"][0]["voided_at"] is None
