"""Whatever JSON the API accepts in an event's `data` reads back identical through the event
log (`GET /v1/events`), the case (`GET /v1/cases/{id}`) and the case page; whatever it refuses
is a 422 problem pointing into `data`, and nothing of it is stored. Run on both databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from conftest import Tenant
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FORM = {"content-type": "application/x-www-form-urlencoded"}

property_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Text a database stores as it is: no NUL, no unpaired surrogate. Any text: those too.
storable_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
any_text = st.text(
    st.characters(exclude_categories=()) | st.characters(categories=["Cs"]), max_size=12
)


def json_values(text: st.SearchStrategy[str], *, finite: bool) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=not finite, allow_infinity=not finite)
        | text
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=16,
    )


def deeply_nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


storable_data = st.dictionaries(storable_text, json_values(storable_text, finite=True), max_size=5)
any_data = st.dictionaries(
    any_text,
    json_values(any_text, finite=False) | st.integers(20, 40).map(deeply_nested),
    max_size=5,
)


class _TimelineData(HTMLParser):
    """The key and value texts the case page shows for each event, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, str]] = []
        self._reading: str | None = None
        self._key = ""
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "timeline__event" in classes:
            self.events.append({})
        for part in ("timeline__key", "timeline__value"):
            if part in classes:
                self._reading, self._text = part, ""

    def handle_data(self, data: str) -> None:
        if self._reading is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag != "span" or self._reading is None:
            return
        if self._reading == "timeline__key":
            self._key = self._text
        else:
            self.events[-1][self._key] = self._text
        self._reading = None


def shown_on_page(html: str) -> list[dict[str, str]]:
    parser = _TimelineData()
    parser.feed(html)
    parser.close()
    return parser.events


def reads_as(shown: dict[str, str], data: dict[str, Any]) -> bool:
    """The page shows each key as sent, a text value as sent and any other value as JSON."""
    if set(shown) != set(data):
        return False
    return all(
        shown[key] == value if isinstance(value, str) else json.loads(shown[key]) == value
        for key, value in data.items()
    )


@pytest.fixture
async def manager(app: FastAPI, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to the dashboard with the tenant's read key."""
    key = tenant.reader.headers["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test"
    ) as browser:
        response = await browser.post(
            "/dashboard/sign-in", content=f"credential={key}", headers=FORM
        )
        assert response.status_code == 303, response.text
        yield browser


async def post_event(tenant: Tenant, case_id: str, data: dict[str, Any]) -> httpx.Response:
    event = {
        "id": f"ev-{case_id}",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-02T10:15:00Z",
        "data": data,
    }
    # ASCII JSON text, so surrogates travel as escapes and NaN as a bare word, as any client
    # could send them.
    return await tenant.writer.post(
        "/v1/events", content=json.dumps(event), headers={"content-type": "application/json"}
    )


async def assert_reads_back(
    tenant: Tenant, manager: httpx.AsyncClient, case_id: str, data: dict[str, Any]
) -> None:
    log = await tenant.reader.get("/v1/events", params={"case_id": case_id})
    assert log.status_code == 200, log.text
    assert [item["data"] for item in log.json()["items"]] == [data]
    case = await tenant.reader.get(f"/v1/cases/{case_id}")
    assert case.status_code == 200, case.text
    assert [event["data"] for event in case.json()["events"]] == [data]
    page = await manager.get(f"/dashboard/cases/{case_id}")
    assert page.status_code == 200, page.text
    shown = shown_on_page(page.text)
    assert len(shown) == 1
    assert reads_as(shown[0], data), (shown[0], data)


@given(data=storable_data)
@property_settings
async def test_storable_json_is_accepted_and_reads_back_identical_everywhere(
    tenant: Tenant, manager: httpx.AsyncClient, data: dict[str, Any]
) -> None:
    case_id = f"C-{uuid.uuid4().hex}"
    response = await post_event(tenant, case_id, data)
    assert response.status_code == 201, response.text
    await assert_reads_back(tenant, manager, case_id, data)


@given(data=any_data)
@property_settings
async def test_any_json_is_either_read_back_identical_or_refused_pointing_into_data(
    tenant: Tenant, manager: httpx.AsyncClient, data: dict[str, Any]
) -> None:
    case_id = f"C-{uuid.uuid4().hex}"
    response = await post_event(tenant, case_id, data)
    if response.status_code == 201:
        await assert_reads_back(tenant, manager, case_id, data)
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    pointers = [error["pointer"] for error in response.json()["errors"]]
    assert pointers
    assert all(p == "/data" or p.startswith("/data/") for p in pointers), pointers
    assert (await tenant.reader.get(f"/v1/cases/{case_id}")).status_code == 404
