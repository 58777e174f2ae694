"""Small payloads for polling: ``GET /tasks/{id}/progress`` and ``GET /tasks/{id}/result``
show a part of the task, with the task's own ETag / ``If-None-Match`` / ``wait_s`` rules applied
to that part."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientResponse

from tests.support.waiting import eventually
from tests.web.helpers import MakeClient, assert_error, assert_success
from tests.web.live import Live, make_live

#: A deadline for the test itself, far past anything these requests should take.
GUARD_S = 20.0
PROGRESS_FIELDS = {
    "id",
    "status",
    "progress",
    "message",
    "step",
    "total_steps",
    "step_name",
    "eta_s",
}
RESULT_FIELDS = {"id", "status", "result", "error", "completed_at"}


@pytest.fixture
async def live(make_client: MakeClient) -> Live:
    return await make_live(make_client)


async def _watching(live: Live, task_id: str) -> int:
    return live.watcher.watching(task_id)


def poll(
    live: Live, task_id: str, part: str, wait_s: float, etag: str
) -> asyncio.Task[ClientResponse]:
    return asyncio.create_task(
        live.client.get(
            live.url(task_id, f"/{part}"),
            params={"wait_s": str(wait_s)},
            headers={"If-None-Match": etag},
        )
    )


async def test_progress_shows_the_progress_fields_only(live: Live) -> None:
    task = await live.submit()
    running = await live.claim()
    await live.report(running, 40, "page 3", step=2, total_steps=5, step_name="内容生成")

    response = await live.client.get(live.url(task.id, "/progress"))
    data = await assert_success(response)
    assert set(data) == PROGRESS_FIELDS
    assert data["id"] == task.id
    assert (data["status"], data["progress"], data["message"]) == ("running", 40, "page 3")
    assert (data["step"], data["total_steps"], data["step_name"]) == (2, 5, "内容生成")
    assert data["eta_s"] is not None
    assert response.headers["ETag"].startswith('W/"')
    assert response.headers["Cache-Control"] == "no-cache"


async def test_result_shows_the_outcome_once_the_task_ended(live: Live) -> None:
    task = await live.submit()
    before = await assert_success(await live.client.get(live.url(task.id, "/result")))
    assert set(before) == RESULT_FIELDS
    assert (before["status"], before["result"], before["error"]) == ("pending", None, None)

    await live.complete(await live.claim(), result={"rows": 2})
    after = await assert_success(await live.client.get(live.url(task.id, "/result")))
    assert (after["status"], after["result"], after["error"]) == ("completed", {"rows": 2}, None)
    assert after["completed_at"] is not None


@pytest.mark.parametrize("part", ["progress", "result"])
async def test_an_unchanged_part_answers_304(live: Live, part: str) -> None:
    task = await live.submit()
    first = await live.client.get(live.url(task.id, f"/{part}"))
    again = await live.client.get(
        live.url(task.id, f"/{part}"), headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    assert again.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("part", ["progress", "result"])
async def test_an_unknown_task_is_404_and_a_bad_query_400(live: Live, part: str) -> None:
    missing = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    await assert_error(await live.client.get(live.url(missing, f"/{part}")), 404, "not_found")
    task = await live.submit()
    bad = await live.client.get(live.url(task.id, f"/{part}"), params={"wait_s": "0"})
    await assert_error(bad, 400, "bad_request")


async def test_a_progress_long_poll_wakes_on_a_progress_report(live: Live) -> None:
    task = await live.submit()
    running = await live.claim()
    first = await live.client.get(live.url(task.id, "/progress"))
    waiter = poll(live, task.id, "progress", 60, first.headers["ETag"])
    await eventually(lambda: _watching(live, task.id), lambda n: n == 1)

    await live.report(running, 60, "page 4", step=3, total_steps=5, step_name="Syncing ecs")

    async with asyncio.timeout(GUARD_S):
        response = await waiter
    data = await assert_success(response)
    assert (data["progress"], data["step"], data["step_name"]) == (60, 3, "Syncing ecs")
    assert response.headers["ETag"] != first.headers["ETag"]


async def test_a_result_long_poll_sleeps_through_progress_and_wakes_at_the_end(
    live: Live,
) -> None:
    task = await live.submit()
    running = await live.claim()
    first = await live.client.get(live.url(task.id, "/result"))
    waiter = poll(live, task.id, "result", 60, first.headers["ETag"])
    await eventually(lambda: _watching(live, task.id), lambda n: n == 1)

    # A progress report changes the task, but nothing the result shows: the poll keeps waiting.
    await live.report(running, 50, "half way")
    task_now = await assert_success(await live.client.get(live.url(task.id)))
    assert task_now["progress"] == 50
    assert not waiter.done()
    assert live.watcher.watching(task.id) == 1

    await live.complete(running, result={"rows": 7})
    async with asyncio.timeout(GUARD_S):
        data = await assert_success(await waiter)
    assert (data["status"], data["result"]) == ("completed", {"rows": 7})
