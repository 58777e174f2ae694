"""Submitting a batch: ``TaskService.submit_many`` and ``POST /tasks`` with a JSON array."""

from __future__ import annotations

import pytest

from cam_tasks.domain import InvalidParamsError, Priority, TaskStatus, UnknownTaskTypeError
from cam_tasks.service import TaskSubmission
from cam_tasks.web.schemas import MAX_BATCH_SIZE
from tests.web.helpers import PREFIX, Api, MakeClient, assert_error, assert_success

# -- the service ------------------------------------------------------------------------------


async def test_submit_many_stores_every_task_in_order_and_wakes_the_dispatcher(api: Api) -> None:
    tasks = await api.service.submit_many(
        [
            TaskSubmission("echo", {"text": "a"}),
            TaskSubmission("echo", {"text": "b", "times": 2}, priority="high"),
            TaskSubmission("sync_assets", {"provider": "p", "account_id": 1, "asset_types": ["x"]}),
        ]
    )

    assert [task.type for task in tasks] == ["echo", "echo", "sync_assets"]
    assert [task.params.get("text") for task in tasks] == ["a", "b", None]
    assert tasks[1].priority == Priority.HIGH
    assert all(task.status is TaskStatus.PENDING for task in tasks)
    assert [await api.service.get(task.id) for task in tasks] == tasks
    assert api.notifier.submitted == [task.id for task in tasks]


async def test_one_invalid_submission_stores_none_and_every_problem_names_its_index(
    api: Api,
) -> None:
    with pytest.raises(InvalidParamsError) as raised:
        await api.service.submit_many(
            [
                TaskSubmission("echo", {"text": "ok"}),
                TaskSubmission("echo", {"text": ""}),
                TaskSubmission("echo", {"text": "x"}, priority="soon"),
            ]
        )

    locs = [detail["loc"] for detail in raised.value.details]
    assert locs == [[1, "params", "text"], [2, "priority"]]
    assert await api.stored() == 0
    assert api.notifier.submitted == []


async def test_an_unknown_type_in_a_batch_stores_nothing(api: Api) -> None:
    with pytest.raises(UnknownTaskTypeError):
        await api.service.submit_many(
            [TaskSubmission("echo", {"text": "ok"}), TaskSubmission("nope")]
        )
    assert await api.stored() == 0


async def test_a_repeated_idempotency_key_yields_the_first_task(api: Api) -> None:
    first = await api.service.submit("echo", {"text": "a"}, idempotency_key="k")

    tasks = await api.service.submit_many(
        [
            TaskSubmission("echo", {"text": "b"}, idempotency_key="k"),
            TaskSubmission("echo", {"text": "c"}, idempotency_key="n"),
            TaskSubmission("echo", {"text": "d"}, idempotency_key="n"),
        ]
    )

    assert tasks[0] == first
    assert tasks[1] == tasks[2]
    assert await api.stored() == 2


async def test_an_empty_batch_is_nothing_to_do(api: Api) -> None:
    assert await api.service.submit_many([]) == []


# -- POST /tasks with an array ----------------------------------------------------------------


async def test_an_array_body_submits_every_task_and_answers_their_ids_in_order(api: Api) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks",
        json=[
            {"type": "echo", "params": {"text": "a"}},
            {"type": "echo", "params": {"text": "b"}, "priority": "urgent", "delay_s": 5.0},
        ],
    )

    data = await assert_success(response, 202)
    assert "Location" not in response.headers
    assert [item["message"] for item in data] == ["task submitted"] * 2
    first, second = [await api.service.get(item["task_id"]) for item in data]
    assert (first.params["text"], second.params["text"]) == ("a", "b")
    assert second.priority == Priority.URGENT
    assert second.run_at > first.run_at


async def test_an_invalid_item_is_a_422_naming_its_index_and_nothing_is_stored(api: Api) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks",
        json=[
            {"type": "echo", "params": {"text": "a"}},
            {"type": "echo", "params": {"text": "a"}, "bogus": 1},
            {"type": "echo", "params": {"text": ""}},
        ],
    )

    data = await assert_error(response, 422, "validation_error")
    assert [detail["loc"][:2] for detail in data["details"]] == [[1, "bogus"]]
    assert await api.stored() == 0

    response = await api.client.post(
        f"{PREFIX}/tasks", json=[{"type": "echo", "params": {"text": ""}}]
    )
    data = await assert_error(response, 422, "validation_error")
    assert [detail["loc"] for detail in data["details"]] == [[0, "params", "text"]]
    assert await api.stored() == 0


@pytest.mark.parametrize("size", [0, MAX_BATCH_SIZE + 1])
async def test_an_empty_or_oversized_array_is_a_422(
    api: Api, make_client: MakeClient, size: int
) -> None:
    client = await make_client(api.service, max_body_bytes=1_000_000)

    response = await client.post(
        f"{PREFIX}/tasks", json=[{"type": "echo", "params": {"text": "a"}}] * size
    )

    data = await assert_error(response, 422, "validation_error")
    assert data["details"][0]["type"] == ("too_short" if size == 0 else "too_long")
    assert await api.stored() == 0


async def test_an_idempotency_key_header_makes_a_batch_safe_to_send_again(api: Api) -> None:
    batch = [
        {"type": "echo", "params": {"text": "a"}},
        {"type": "echo", "params": {"text": "b"}, "idempotency_key": "own"},
        {"type": "echo", "params": {"text": "c"}},
    ]
    header = {"Idempotency-Key": "nightly-batch"}
    first = await assert_success(
        await api.client.post(f"{PREFIX}/tasks", json=batch, headers=header), 202
    )
    ids = [item["task_id"] for item in first]
    keys = [(await api.service.get(task_id)).idempotency_key for task_id in ids]
    assert keys == ["nightly-batch#0", "own", "nightly-batch#2"]

    again = await assert_success(
        await api.client.post(f"{PREFIX}/tasks", json=batch, headers=header), 202
    )
    assert [item["task_id"] for item in again] == ids
    assert await api.stored() == 3
