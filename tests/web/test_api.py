"""The HTTP API's endpoints, through a real server: what each answers and what it changes."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from cam_tasks.domain import ManualClock, Task, TaskError, TaskStatus
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from tests.web.helpers import (
    PREFIX,
    START,
    Api,
    MakeClient,
    assert_error,
    assert_success,
    make_registry,
)

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def submit(api: Api, body: Mapping[str, object]) -> str:
    response = await api.client.post(f"{PREFIX}/tasks", json=body)
    data = await assert_success(response, 202)
    return str(data["task_id"])


async def claim(api: Api, task_type: str = "echo") -> Task:
    task = await api.repository.claim(
        types={task_type}, owner="w1", now=api.clock.now(), lease_s=60
    )
    assert task is not None
    return task


# -- submit --------------------------------------------------------------------------------------


async def test_generic_submit_answers_202_with_the_task_id_and_its_location(api: Api) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks",
        json={
            "type": "echo",
            "params": {"text": "hi"},
            "priority": "high",
            "delay_s": 30,
            "max_retries": 1,
            "timeout_s": 9.5,
        },
    )

    data = await assert_success(response, 202)
    assert set(data) == {"task_id", "message", "deduplicated"}
    assert data["deduplicated"] is False
    assert data["message"] == "task submitted"
    assert response.headers["Location"] == f"{PREFIX}/tasks/{data['task_id']}"
    task = await api.service.get(data["task_id"])
    assert task.status is TaskStatus.PENDING
    assert task.params == {"text": "hi", "times": 1}
    assert (task.priority, task.max_retries, task.timeout_s) == (2, 1, 9.5)
    assert (task.run_at - START).total_seconds() == 30
    assert api.notifier.submitted == [task.id]


async def test_generic_submit_accepts_an_absolute_run_at(api: Api) -> None:
    task_id = await submit(
        api, {"type": "echo", "params": {"text": "x"}, "run_at": "2026-03-02T08:00:00+08:00"}
    )
    task = await api.service.get(task_id)
    assert task.run_at.isoformat() == "2026-03-02T00:00:00+00:00"


async def test_sync_assets_route_submits_its_body_as_params(api: Api) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks/sync-assets",
        json={
            "provider": "aliyun",
            "asset_types": ["ecs"],
            "regions": ["cn-shenzhen"],
            "account_id": 123,
        },
    )
    data = await assert_success(response, 202)
    assert response.headers["Location"] == f"{PREFIX}/tasks/{data['task_id']}"
    task = await api.service.get(data["task_id"])
    assert task.type == "sync_assets"
    assert task.params == {
        "provider": "aliyun",
        "asset_types": ["ecs"],
        "regions": ["cn-shenzhen"],
        "account_id": 123,
    }


async def test_discover_assets_route_submits_its_body_as_params(api: Api) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks/discover-assets", json={"provider": "aliyun", "account_id": "a-1"}
    )
    data = await assert_success(response, 202)
    task = await api.service.get(data["task_id"])
    assert task.type == "discover_assets"
    assert task.params == {"provider": "aliyun", "account_id": "a-1", "regions": None}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tasks/sync-assets", {"provider": "p", "asset_types": ["ecs"], "account_id": 1}),
        ("/tasks", {"type": "echo", "params": {"text": "x"}}),
    ],
)
async def test_an_idempotency_key_header_makes_resubmits_return_the_first_task(
    api: Api, path: str, body: Mapping[str, object]
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await assert_success(
        await api.client.post(f"{PREFIX}{path}", json=body, headers=headers), 202
    )
    second = await assert_success(
        await api.client.post(f"{PREFIX}{path}", json=body, headers=headers), 202
    )
    assert second["task_id"] == first["task_id"]
    assert await api.stored() == 1
    assert (await api.service.get(first["task_id"])).idempotency_key == "order-42"


async def test_the_idempotency_key_may_come_in_the_body(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x"}, "idempotency_key": "k1"}
    assert await submit(api, body) == await submit(api, body)
    assert await api.stored() == 1


async def test_location_follows_the_prefix_the_host_mounted_the_api_under(
    make_client: MakeClient,
) -> None:
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    client = await make_client(service, prefix="/jobs")
    response = await client.post("/jobs/tasks", json={"type": "echo", "params": {"text": "x"}})
    data = await assert_success(response, 202)
    assert response.headers["Location"] == f"/jobs/tasks/{data['task_id']}"
    assert (await client.get(response.headers["Location"])).status == 200


# -- read ----------------------------------------------------------------------------------------


async def test_get_shows_every_field_of_a_pending_task(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}, "priority": 3})

    data = await assert_success(await api.client.get(f"{PREFIX}/tasks/{task_id}"))

    assert data == {
        "id": task_id,
        "type": "echo",
        "status": "pending",
        "params": {"text": "x", "times": 1},
        "result": None,
        "error": None,
        "progress": 0.0,
        "message": "",
        "step": None,
        "total_steps": None,
        "step_name": None,
        "attempts": 0,
        "max_retries": 3,
        "priority": 3,
        "queue": "default",
        "unique_key": None,
        "concurrency_key": None,
        "priority_name": "urgent",
        "run_at": "2026-03-01T12:00:00.000Z",
        "timeout_s": None,
        "created_by": "anonymous",
        "project_id": None,
        "created_at": "2026-03-01T12:00:00.000Z",
        "started_at": None,
        "completed_at": None,
        "updated_at": "2026-03-01T12:00:00.000Z",
        "duration": None,
        "eta_s": None,
        "cancel_requested": False,
        "history": [],
    }


async def test_a_running_task_counts_its_duration_up_to_now(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}})
    await claim(api)
    api.clock.advance(42.5)

    data = await assert_success(await api.client.get(f"{PREFIX}/tasks/{task_id}"))

    assert data["status"] == "running"
    assert data["attempts"] == 1
    assert data["started_at"] == "2026-03-01T12:00:00.000Z"
    assert data["duration"] == 42.5


async def test_a_failed_task_shows_its_error_history_and_duration(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}})
    claimed = await claim(api)
    api.clock.advance(3)
    error = TaskError(type="ProviderDown", message="503 from provider")
    await api.repository.fail(claimed.lease, now=api.clock.now(), error=error)

    data = await assert_success(await api.client.get(f"{PREFIX}/tasks/{task_id}"))

    assert data["status"] == "failed"
    assert data["error"] == {"type": "ProviderDown", "message": "503 from provider"}
    assert data["duration"] == 3.0
    assert RFC3339_Z.fullmatch(data["completed_at"])
    assert [h["outcome"] for h in data["history"]] == ["failed"]
    assert all("owner" not in h for h in data["history"])


async def test_list_filters_by_type_and_statuses_and_pages_newest_first(api: Api) -> None:
    ids = []
    for n in range(4):
        ids.append(await submit(api, {"type": "echo", "params": {"text": str(n)}}))
        api.clock.advance(1)
    await submit(api, {"type": "discover_assets", "params": {"provider": "p", "account_id": 1}})
    await api.service.cancel(ids[0])

    response = await api.client.get(
        f"{PREFIX}/tasks", params={"type": "echo", "status": "pending,cancelled", "limit": "2"}
    )
    data = await assert_success(response)
    assert data["total"] == 4
    assert [t["id"] for t in data["tasks"]] == [ids[3], ids[2]]

    response = await api.client.get(
        f"{PREFIX}/tasks", params={"status": "cancelled", "offset": "0"}
    )
    data = await assert_success(response)
    assert (data["total"], [t["id"] for t in data["tasks"]]) == (1, [ids[0]])


async def test_list_filters_by_who_submitted(api: Api) -> None:
    fired = await api.service.submit("echo", {"text": "a"}, created_by="schedule:nightly")
    api.clock.advance(1)
    await submit(api, {"type": "echo", "params": {"text": "b"}})  # by "anonymous"
    await api.service.submit("echo", {"text": "c"}, created_by="schedule:hourly")

    response = await api.client.get(f"{PREFIX}/tasks", params={"created_by": "schedule:nightly"})
    data = await assert_success(response)
    assert (data["total"], [t["id"] for t in data["tasks"]]) == (1, [fired.id])
    response = await api.client.get(
        f"{PREFIX}/tasks", params={"created_by": "anonymous", "status": "pending"}
    )
    data = await assert_success(response)
    assert [t["created_by"] for t in data["tasks"]] == ["anonymous"]


async def test_list_defaults_to_the_first_twenty(api: Api) -> None:
    for n in range(21):
        await submit(api, {"type": "echo", "params": {"text": str(n)}})
    data = await assert_success(await api.client.get(f"{PREFIX}/tasks"))
    assert (len(data["tasks"]), data["total"]) == (20, 21)


# -- operator actions ----------------------------------------------------------------------------


async def test_cancel_answers_200_with_the_cancelled_task(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}})
    data = await assert_success(await api.client.post(f"{PREFIX}/tasks/{task_id}/cancel"))
    assert (data["id"], data["status"]) == (task_id, "cancelled")
    assert (await api.service.get(task_id)).status is TaskStatus.CANCELLED


async def test_cancelling_a_running_task_flags_it_and_tells_the_dispatcher(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}})
    await claim(api)
    data = await assert_success(await api.client.post(f"{PREFIX}/tasks/{task_id}/cancel"))
    assert (data["status"], data["cancel_requested"]) == ("running", True)
    assert api.notifier.cancelled == [task_id]


async def test_retry_answers_202_with_the_task_pending_again(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}})
    await api.service.cancel(task_id)

    response = await api.client.post(f"{PREFIX}/tasks/{task_id}/retry")

    data = await assert_success(response, 202)
    assert (data["id"], data["status"]) == (task_id, "pending")
    assert response.headers["Location"] == f"{PREFIX}/tasks/{task_id}"
    assert api.notifier.submitted == [task_id, task_id]


async def test_delete_answers_200_with_null_data_and_the_task_is_gone(api: Api) -> None:
    task_id = await submit(api, {"type": "echo", "params": {"text": "x"}})
    await api.service.cancel(task_id)

    data = await assert_success(await api.client.delete(f"{PREFIX}/tasks/{task_id}"))

    assert data is None
    await assert_error(await api.client.get(f"{PREFIX}/tasks/{task_id}"), 404, "not_found")


# -- request ids ---------------------------------------------------------------------------------


async def test_a_sane_client_request_id_is_echoed(api: Api) -> None:
    response = await api.client.get(f"{PREFIX}/tasks", headers={"X-Request-ID": "req-42.a:b"})
    assert response.headers["X-Request-ID"] == "req-42.a:b"


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "<script>", "-leading"])
async def test_an_insane_client_request_id_is_replaced(api: Api, given: str) -> None:
    response = await api.client.get(f"{PREFIX}/tasks", headers={"X-Request-ID": given})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


async def test_every_response_gets_a_fresh_request_id(api: Api) -> None:
    first = await api.client.get(f"{PREFIX}/tasks")
    second = await api.client.get(f"{PREFIX}/nowhere")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
