"""One active task per unique key over HTTP: a duplicate submit answers 200 with the active
task and ``deduplicated: true``; an unknown queue is a 422 with details."""

from __future__ import annotations

from tests.web.helpers import PREFIX, Api, assert_error, assert_success


async def test_a_duplicate_submit_joins_the_active_task_with_200(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x"}, "unique_key": "sync:aliyun:123"}
    first = await api.client.post(f"{PREFIX}/tasks", json=body)
    created = await assert_success(first, 202)
    second = await api.client.post(f"{PREFIX}/tasks", json=body)
    joined = await assert_success(second, 200)

    assert created["deduplicated"] is False
    assert joined["task_id"] == created["task_id"]
    assert joined["deduplicated"] is True
    assert second.headers["Location"].endswith(f"/tasks/{created['task_id']}")
    assert await api.stored() == 1


async def test_once_the_task_ended_the_key_is_free_again(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x"}, "unique_key": "k"}
    created = await assert_success(await api.client.post(f"{PREFIX}/tasks", json=body), 202)
    await api.service.cancel(created["task_id"])
    again = await assert_success(await api.client.post(f"{PREFIX}/tasks", json=body), 202)
    assert again["task_id"] != created["task_id"]
    # The old one cannot be retried while the new one holds the key: 409 naming the holder.
    refused = await api.client.post(f"{PREFIX}/tasks/{created['task_id']}/retry")
    data = await assert_error(refused, 409, "conflict")
    assert data["details"] == [{"task_id": created["task_id"], "active_task_id": again["task_id"]}]


async def test_an_empty_unique_key_opts_out(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x"}, "unique_key": ""}
    first = await assert_success(await api.client.post(f"{PREFIX}/tasks", json=body), 202)
    second = await assert_success(await api.client.post(f"{PREFIX}/tasks", json=body), 202)
    assert first["task_id"] != second["task_id"]


async def test_an_unknown_queue_is_refused_with_details(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x"}, "queue": "nowhere"}
    data = await assert_error(
        await api.client.post(f"{PREFIX}/tasks", json=body), 422, "validation_error"
    )
    assert any(detail["loc"] == ["queue"] for detail in data["details"]), data
    assert await api.stored() == 0


async def test_a_task_shows_its_queue_and_keys(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x"}, "concurrency_key": "acct:1"}
    created = await assert_success(await api.client.post(f"{PREFIX}/tasks", json=body), 202)
    task = await assert_success(await api.client.get(f"{PREFIX}/tasks/{created['task_id']}"))
    assert (task["queue"], task["unique_key"], task["concurrency_key"]) == (
        "default",
        None,
        "acct:1",
    )
