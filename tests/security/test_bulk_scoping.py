"""Bulk retry, cancel and delete over HTTP: counts exact, another project's tasks untouched,
viewers 403, bad filters 422 with details."""

from __future__ import annotations

from typing import Any

import pytest

from cam_tasks.domain import Principal, TaskFilter, TaskStatus
from tests.security.conftest import SecureApi
from tests.security.support import ADMIN, ALICE, BOB, VERA, bearer
from tests.security.test_scoping import PER_PROJECT, populate
from tests.web.helpers import PREFIX, assert_error, assert_success

THIRD = PER_PROJECT // 3


async def _bulk(api: SecureApi, method: str, path: str, principal: Principal, body: Any) -> Any:
    return await api.client.request(method, f"{PREFIX}{path}", json=body, headers=bearer(principal))


async def _count(api: SecureApi, principal: Principal, status: TaskStatus) -> int:
    query = TaskFilter(statuses=frozenset({status}))
    page = await api.service.list(query, limit=100, principal=principal)
    return page.total


async def test_bulk_actions_count_exactly_and_touch_only_the_callers_projects(
    api: SecureApi,
) -> None:
    await populate(api)
    before = {s: await _count(api, BOB, s) for s in TaskStatus}

    retried = await _bulk(api, "POST", "/tasks/retry", ALICE, {"status": "failed"})
    assert await assert_success(retried) == {"count": THIRD}
    assert await _count(api, ALICE, TaskStatus.FAILED) == 0
    assert await _count(api, ALICE, TaskStatus.PENDING) == 2 * THIRD

    deleted = await _bulk(api, "DELETE", "/tasks", ALICE, {"status": ["completed"]})
    assert await assert_success(deleted) == {"count": THIRD}
    assert await _count(api, ALICE, TaskStatus.COMPLETED) == 0

    cancelled = await _bulk(api, "POST", "/tasks/cancel", ALICE, {"type": "echo"})
    assert await assert_success(cancelled) == {"count": 2 * THIRD}
    assert await _count(api, ALICE, TaskStatus.CANCELLED) == 2 * THIRD

    assert {s: await _count(api, BOB, s) for s in TaskStatus} == before

    # An admin reaches every project.
    everyone = await _bulk(api, "DELETE", "/tasks", ADMIN, {"status": "cancelled"})
    assert await assert_success(everyone) == {"count": 2 * THIRD}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tasks/retry"), ("POST", "/tasks/cancel"), ("DELETE", "/tasks")],
)
async def test_a_viewer_gets_403_and_nothing_changes(
    api: SecureApi, method: str, path: str
) -> None:
    await populate(api)
    before = {s: await _count(api, ALICE, s) for s in TaskStatus}
    response = await _bulk(api, method, path, VERA, {"type": "echo"})
    await assert_error(response, 403, "forbidden")
    assert {s: await _count(api, ALICE, s) for s in TaskStatus} == before


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("DELETE", "/tasks", {}, ["filter"]),
        # Each route's document lists only the statuses its action applies to.
        ("POST", "/tasks/retry", {"status": "pending"}, ["status", 0]),
        ("POST", "/tasks/cancel", {"status": "completed"}, ["status", 0]),
        ("DELETE", "/tasks", {"status": "running"}, ["status", 0]),
        ("POST", "/tasks/retry", {"status": ["failed", "failed"]}, ["status"]),
        ("POST", "/tasks/retry", {"status": "bogus"}, ["status", 0]),
        ("POST", "/tasks/retry", {"project_id": "project-b"}, ["project_id"]),
        ("POST", "/tasks/retry", {"queue": "$where"}, ["queue"]),
        ("DELETE", "/tasks", {"finished_before": "2026-01-01"}, ["finished_before"]),
    ],
)
async def test_a_bad_filter_is_a_422_with_details(
    api: SecureApi, method: str, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await _bulk(api, method, path, ALICE, body)
    data = await assert_error(response, 422, "validation_error")
    assert [detail["loc"] for detail in data["details"]] == [loc]


async def test_a_window_that_ends_before_it_starts_matches_nothing(api: SecureApi) -> None:
    await populate(api)
    window = {"finished_after": "2026-02-01T00:00Z", "finished_before": "2026-01-01T00:00Z"}
    response = await _bulk(api, "DELETE", "/tasks", ALICE, window)
    assert await assert_success(response) == {"count": 0}


async def test_a_body_that_is_not_an_object_is_refused(api: SecureApi) -> None:
    response = await _bulk(api, "POST", "/tasks/cancel", ALICE, ["pending"])
    await assert_error(response, 422, "validation_error")


async def test_no_body_is_the_empty_filter(api: SecureApi) -> None:
    await populate(api)
    purge = await api.client.delete(f"{PREFIX}/tasks", headers=bearer(ALICE))
    data = await assert_error(purge, 422, "validation_error")
    assert data["details"][0]["type"] == "filter_required"
    retried = await api.client.post(f"{PREFIX}/tasks/retry", headers=bearer(ALICE))
    assert await assert_success(retried) == {"count": THIRD}
