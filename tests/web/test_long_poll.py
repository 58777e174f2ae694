"""Long polls: ``GET /tasks/{id}?wait_s=N`` answers as soon as the task changes, wherever the
change was made, or after N seconds with the task as it is."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientResponse

from tests.support.waiting import eventually
from tests.web.helpers import MakeClient, assert_error, assert_success
from tests.web.live import Live, make_live

#: A deadline for the test itself, far past anything these requests should take.
GUARD_S = 20.0


@pytest.fixture
async def live(make_client: MakeClient) -> Live:
    return await make_live(make_client)


async def waiting(live: Live, task_id: str, count: int = 1) -> None:
    """Until ``count`` requests are waiting on ``task_id``."""
    await eventually(lambda: _watching(live, task_id), lambda n: n == count)


async def _watching(live: Live, task_id: str) -> int:
    return live.watcher.watching(task_id)


def long_poll(
    live: Live, task_id: str, wait_s: float, etag: str | None = None
) -> asyncio.Task[ClientResponse]:
    headers = {} if etag is None else {"If-None-Match": etag}
    return asyncio.create_task(
        live.client.get(live.url(task_id), params={"wait_s": str(wait_s)}, headers=headers)
    )


async def test_a_long_poll_answers_as_soon_as_a_local_write_changes_the_task(live: Live) -> None:
    task = await live.submit()
    first = await live.client.get(live.url(task.id))
    poll = long_poll(live, task.id, 60, first.headers["ETag"])
    await waiting(live, task.id)

    await live.claim()  # nothing polls here (interval NEVER_S): only the write's news wakes it

    async with asyncio.timeout(GUARD_S):
        response = await poll
    data = await assert_success(response)
    assert data["status"] == "running"
    assert response.headers["ETag"] != first.headers["ETag"]
    assert live.watcher.watching(task.id) == 0


async def test_without_if_none_match_it_waits_for_a_change_from_the_state_on_arrival(
    live: Live,
) -> None:
    task = await live.submit()
    running = await live.claim()
    poll = long_poll(live, task.id, 60)
    await waiting(live, task.id)

    await live.report(running, 40, "halfway there")

    async with asyncio.timeout(GUARD_S):
        data = await assert_success(await poll)
    assert (data["progress"], data["message"]) == (40, "halfway there")


async def test_a_client_behind_gets_the_current_state_at_once(live: Live) -> None:
    task = await live.submit()
    stale = (await live.client.get(live.url(task.id))).headers["ETag"]
    await live.claim()
    async with asyncio.timeout(GUARD_S):  # wait_s=60 would outlast the guard
        response = await long_poll(live, task.id, 60, stale)
    assert (await assert_success(response))["status"] == "running"


async def test_with_nothing_new_it_answers_304_after_wait_s(live: Live) -> None:
    task = await live.submit()
    current = (await live.client.get(live.url(task.id))).headers["ETag"]
    async with asyncio.timeout(GUARD_S):
        response = await long_poll(live, task.id, 0.05, current)
    assert response.status == 304
    assert response.headers["ETag"] == current
    assert await response.read() == b""


async def test_without_if_none_match_it_answers_the_unchanged_task_after_wait_s(
    live: Live,
) -> None:
    task = await live.submit()
    async with asyncio.timeout(GUARD_S):
        data = await assert_success(await long_poll(live, task.id, 0.05))
    assert data["status"] == "pending"


async def test_a_write_by_another_instance_is_seen_by_polling_the_store(
    make_client: MakeClient,
) -> None:
    live = await make_live(make_client, poll_interval_s=0.01)
    task = await live.submit()
    current = (await live.client.get(live.url(task.id))).headers["ETag"]
    poll = long_poll(live, task.id, 60, current)
    await waiting(live, task.id)

    await live.claim(local=False)  # straight to the store: no news reaches this instance

    async with asyncio.timeout(GUARD_S):
        data = await assert_success(await poll)
    assert data["status"] == "running"


async def test_many_waiters_on_one_task_share_one_watch(live: Live) -> None:
    task = await live.submit()
    polls = [long_poll(live, task.id, 60) for _ in range(5)]
    await waiting(live, task.id, count=5)

    await live.claim()

    async with asyncio.timeout(GUARD_S):
        responses = await asyncio.gather(*polls)
    assert [(await assert_success(r))["status"] for r in responses] == ["running"] * 5
    assert live.watcher.watching(task.id) == 0


async def test_a_task_deleted_during_the_wait_is_a_404(live: Live) -> None:
    task = await live.submit()
    await live.service.cancel(task.id)
    poll = long_poll(live, task.id, 60)
    await waiting(live, task.id)

    await live.service.delete(task.id)

    async with asyncio.timeout(GUARD_S):
        await assert_error(await poll, 404, "not_found")


async def test_shutting_down_answers_waiting_long_polls_at_once(live: Live) -> None:
    task = await live.submit()
    current = (await live.client.get(live.url(task.id))).headers["ETag"]
    poll = long_poll(live, task.id, 60, current)
    await waiting(live, task.id)

    await live.client.app.shutdown()  # what a graceful stop runs before waiting for handlers

    async with asyncio.timeout(GUARD_S):
        response = await poll
    assert response.status == 304


@pytest.mark.parametrize("value", ["0", "-1", "60.5", "abc", "nan", "inf", ""])
async def test_a_wait_s_out_of_range_is_a_400(live: Live, value: str) -> None:
    task = await live.submit()
    response = await live.client.get(live.url(task.id), params={"wait_s": value})
    data = await assert_error(response, 400, "bad_request")
    assert [detail["loc"] for detail in data["details"]] == [["query", "wait_s"]]


async def test_wait_s_given_twice_or_an_unknown_parameter_is_a_400(live: Live) -> None:
    task = await live.submit()
    twice = await live.client.get(f"{live.url(task.id)}?wait_s=1&wait_s=2")
    assert (await assert_error(twice, 400, "bad_request"))["details"][0]["type"] == "repeated"
    unknown = await live.client.get(f"{live.url(task.id)}?wiat_s=1")
    details = (await assert_error(unknown, 400, "bad_request"))["details"]
    assert details[0]["unknown"] == ["wiat_s"]


async def test_the_longest_wait_is_accepted(live: Live) -> None:
    task = await live.submit()
    stale = 'W/"stale"'  # answers at once: the client is behind
    async with asyncio.timeout(GUARD_S):
        response = await long_poll(live, task.id, 60, stale)
    await assert_success(response)
