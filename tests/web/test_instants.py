"""Instants a client sends are refused when their UTC time falls outside the calendar Python
holds (years 1 to 9999), like any invalid value: never a 500.

``0001-01-01T00:00:00+14:00`` is valid RFC 3339 and parses, but it is before the first instant
of year 1 in UTC, and converting it overflowed deep in the service (found while fuzzing the
date-time fields the OpenAPI document declares).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.config import load_settings
from tests.web.helpers import PREFIX, Client, assert_error, assert_success

OUTSIDE_UTC = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999-14:00"]
EDGES_IN_UTC = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = web.Application()
    cam_tasks.setup(app, load_settings(auth={"allow_anonymous": True}))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _submit(run_at: str) -> dict[str, Any]:
    params = {"provider": "none", "account_id": "1"}
    return {"type": "discover_assets", "params": params, "run_at": run_at}


@pytest.mark.parametrize("value", OUTSIDE_UTC)
async def test_a_run_at_outside_utc_is_a_field_error(client: Client, value: str) -> None:
    response = await client.post(f"{PREFIX}/tasks", json=_submit(value))
    data = await assert_error(response, 422, "validation_error")
    assert data["details"][0]["loc"] == ["run_at"]


@pytest.mark.parametrize("key", ["updated_since"])
@pytest.mark.parametrize("value", OUTSIDE_UTC)
async def test_a_list_filter_outside_utc_is_a_malformed_query(
    client: Client, key: str, value: str
) -> None:
    response = await client.get(f"{PREFIX}/tasks?{key}={quote(value)}")
    data = await assert_error(response, 400, "bad_request")
    assert data["details"][0]["loc"] == ["query", key]


@pytest.mark.parametrize("key", ["since", "until"])
@pytest.mark.parametrize("value", OUTSIDE_UTC)
async def test_a_statistics_window_outside_utc_is_a_malformed_query(
    client: Client, key: str, value: str
) -> None:
    response = await client.get(f"{PREFIX}/tasks/stats?{key}={quote(value)}")
    data = await assert_error(response, 400, "bad_request")
    assert data["details"][0]["loc"] == ["query", key]


@pytest.mark.parametrize("value", EDGES_IN_UTC)
async def test_the_first_and_last_instants_in_utc_are_accepted(client: Client, value: str) -> None:
    listed = await assert_success(await client.get(f"{PREFIX}/tasks?updated_since={quote(value)}"))
    assert listed["tasks"] == []
    key = "since" if value.startswith("0001") else "until"
    await assert_success(await client.get(f"{PREFIX}/tasks/stats?{key}={quote(value)}"))


# The document declares these as date-time strings; a number is not one, though pydantic alone
# would read it as Unix seconds (found by schemathesis' negative-data check).
@pytest.mark.parametrize(
    "path", ["/tasks?updated_since={}", "/tasks/stats?since={}", "/tasks/stats?until={}"]
)
@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-03-01"])
async def test_a_number_or_a_bare_date_is_not_an_instant(
    client: Client, path: str, value: str
) -> None:
    response = await client.get(PREFIX + path.format(quote(value)))
    data = await assert_error(response, 400, "bad_request")
    assert data["details"][0]["loc"][0] == "query"


async def test_a_numeric_run_at_is_a_field_error(client: Client) -> None:
    response = await client.post(f"{PREFIX}/tasks", json={**_submit("x"), "run_at": 1700000000})
    data = await assert_error(response, 422, "validation_error")
    assert data["details"][0]["loc"] == ["run_at"]


async def test_an_empty_status_filter_is_no_filter(client: Client) -> None:
    every = await assert_success(await client.get(f"{PREFIX}/tasks"))
    assert await assert_success(await client.get(f"{PREFIX}/tasks?status=")) == every
