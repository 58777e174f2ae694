"""Server-sent events: ``GET /tasks/{id}/events`` streams a task's status and progress as they
change, resumes from ``Last-Event-ID`` without repeating or skipping a state, keeps the
connection alive, and ends after ``done``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.domain import Action, Task, TaskChange
from cam_tasks.web.events import StreamPosition, events_of
from tests.support.waiting import eventually
from tests.test_end_to_end import settings as end_to_end_settings
from tests.web.helpers import PREFIX, MakeClient, assert_error, assert_success
from tests.web.live import Event, Live, make_live, next_event, rest_of, sse_items

GUARD_S = 20.0


@pytest.fixture
async def live(make_client: MakeClient) -> Live:
    return await make_live(make_client)


@asynccontextmanager
async def stream(
    live: Live, task_id: str, last_event_id: str | None = None
) -> AsyncIterator[ClientResponse]:
    headers = {"X-Request-ID": "stream-1"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with asyncio.timeout(GUARD_S):
        response = await live.client.get(live.url(task_id, "/events"), headers=headers)
        try:
            yield response
        finally:
            response.close()


async def watched(live: Live, task_id: str) -> None:
    await eventually(lambda: _count(live, task_id), lambda n: n == 1)


async def _count(live: Live, task_id: str) -> int:
    return live.watcher.watching(task_id)


def summary(event: Event) -> tuple[str, str, float]:
    return event.name, str(event.data["status"]), float(event.data["progress"])


async def test_a_stream_follows_a_task_from_pending_to_done_and_ends(live: Live) -> None:
    task = await live.submit()
    async with stream(live, task.id) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        assert response.headers["X-Request-ID"] == "stream-1"
        assert response.headers["Cache-Control"] == "no-cache"
        items = sse_items(response)
        received = [await next_event(items)]

        running = await live.claim()
        received.append(await next_event(items))
        await live.report(running, 50, "half", step=1, total_steps=2, step_name="内容生成")
        received.append(await next_event(items))
        await live.complete(running, result={"rows": 2})
        received += await rest_of(items)

    assert [summary(e) for e in received] == [
        ("status", "pending", 0),
        ("status", "running", 0),
        ("progress", "running", 50),
        ("status", "completed", 100),
        ("done", "completed", 100),
    ]
    assert received[2].data["message"] == "half"
    assert (received[2].data["step"], received[2].data["total_steps"]) == (1, 2)
    assert received[2].data["step_name"] == "内容生成"
    assert received[-1].data["result"] == {"rows": 2}
    assert all(e.data["id"] == task.id for e in received)
    ids = [e.id for e in received]
    assert None not in ids
    assert len(set(ids)) == len(ids)
    assert live.watcher.watching(task.id) == 0


async def test_a_finished_task_streams_its_state_and_done_then_204_on_reconnect(
    live: Live,
) -> None:
    task = await live.submit()
    await live.complete(await live.claim())
    async with stream(live, task.id) as response:
        events = await rest_of(sse_items(response))
    assert [e.name for e in events] == ["status", "done"]

    # EventSource reconnects when a stream ends: the server tells it there is nothing more.
    async with stream(live, task.id, events[-1].id) as again:
        assert again.status == 204
        assert again.headers["X-Request-ID"] == "stream-1"


async def test_a_reconnect_resumes_at_the_current_state_without_repeating(live: Live) -> None:
    task = await live.submit()
    async with stream(live, task.id) as response:
        first = await next_event(sse_items(response))
    assert summary(first) == ("status", "pending", 0)

    running = await live.claim()  # while disconnected
    await live.report(running, 30)

    async with stream(live, task.id, first.id) as response:
        items = sse_items(response)
        caught_up = await next_event(items)
        assert summary(caught_up) == ("status", "running", 30)  # one event for the new state

    # Reconnecting with the latest id while nothing changed sends nothing until the next change.
    async with stream(live, task.id, caught_up.id) as response:
        items = sse_items(response)
        await watched(live, task.id)
        await live.report(running, 60)
        assert summary(await next_event(items)) == ("progress", "running", 60)


async def test_a_reconnect_after_the_final_status_gets_only_done(live: Live) -> None:
    task = await live.submit()
    running = await live.claim()
    await live.complete(running)
    async with stream(live, task.id) as response:
        final_status = await next_event(sse_items(response))  # leave before ``done``
    assert final_status.name == "status"

    async with stream(live, task.id, final_status.id) as response:
        assert [e.name for e in await rest_of(sse_items(response))] == ["done"]


async def test_a_retried_task_streams_its_new_life_after_done(live: Live) -> None:
    task = await live.submit()
    await live.service.cancel(task.id)
    async with stream(live, task.id) as response:
        done = (await rest_of(sse_items(response)))[-1]
    assert done.name == "done"

    await live.service.retry(task.id)

    async with stream(live, task.id, done.id) as response:
        assert summary(await next_event(sse_items(response))) == ("status", "pending", 0)


@pytest.mark.parametrize("last_event_id", ["", "garbage", "0-0", "a" * 200])
async def test_an_unknown_last_event_id_starts_from_the_current_state(
    live: Live, last_event_id: str
) -> None:
    task = await live.submit()
    async with stream(live, task.id, last_event_id) as response:
        assert summary(await next_event(sse_items(response))) == ("status", "pending", 0)


async def test_keep_alive_comments_flow_while_nothing_happens(make_client: MakeClient) -> None:
    live = await make_live(make_client, sse_keepalive_s=0.01)
    task = await live.submit()
    async with stream(live, task.id) as response:
        items = sse_items(response)
        await next_event(items)
        async for item in items:
            if item == "ping":
                break


async def test_a_stream_follows_writes_made_by_another_instance(make_client: MakeClient) -> None:
    live = await make_live(make_client, poll_interval_s=0.01)
    task = await live.submit()
    async with stream(live, task.id) as response:
        items = sse_items(response)
        await next_event(items)
        running = await live.claim(local=False)  # no news of these reaches the instance
        assert summary(await next_event(items)) == ("status", "running", 0)
        await live.report(running, 70, local=False)
        assert summary(await next_event(items)) == ("progress", "running", 70)
        await live.complete(running, local=False)
        assert [e.name for e in await rest_of(items)] == ["status", "done"]


async def test_a_client_that_goes_away_releases_its_watch(make_client: MakeClient) -> None:
    live = await make_live(make_client, sse_keepalive_s=0.01)
    task = await live.submit()
    async with stream(live, task.id) as response:
        await next_event(sse_items(response))
        assert live.watcher.watching(task.id) == 1
    await eventually(lambda: _count(live, task.id), lambda n: n == 0)


async def test_shutting_down_ends_open_streams(live: Live) -> None:
    task = await live.submit()
    async with stream(live, task.id) as response:
        items = sse_items(response)
        await next_event(items)
        await live.client.app.shutdown()
        assert await rest_of(items) == []  # the stream ended; the client reconnects elsewhere


async def test_an_unexpected_failure_ends_the_stream_and_is_logged(
    live: Live, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = await live.submit()
    async with stream(live, task.id) as response:
        items = sse_items(response)
        await next_event(items)

        async def broken(task_id: str) -> Task:
            raise RuntimeError("a bug")

        monkeypatch.setattr(live.observed, "get", broken)  # what the watcher reads through
        live.watcher.on_change(TaskChange(Action.HEARTBEAT, task.id))

        assert await rest_of(items) == []
    assert "event stream failed" in caplog.text


async def test_an_unknown_task_is_a_404_envelope(live: Live) -> None:
    async with stream(live, "nope") as response:
        await assert_error(response, 404, "not_found")


def test_event_ids_name_what_the_client_has_seen() -> None:
    pending = {"status": "pending", "attempts": 0, "progress": 0.0, "message": "", "history": []}
    running = {**pending, "status": "running", "attempts": 1}
    half = {**running, "progress": 50.0}
    done = {**half, "status": "completed", "progress": 100.0}

    first, at_pending = events_of(None, pending)
    assert [name for name, _ in first] == ["status"]
    assert StreamPosition.parse(first[0][1]) == at_pending
    assert events_of(at_pending, pending) == ([], at_pending)
    (status,), at_running = events_of(at_pending, running)
    assert status[0] == "status"
    (progress,), at_half = events_of(at_running, half)
    assert progress[0] == "progress"
    final, at_end = events_of(at_half, done)
    assert [name for name, _ in final] == ["status", "done"]
    assert at_end.done
    assert StreamPosition.parse(final[-1][1]) == at_end
    assert events_of(at_end, done) == ([], at_end)


async def test_the_runtime_streams_a_real_sync_from_its_own_workers() -> None:
    # Polling is set far past the guard: every event must come from the runtime's own writes
    # waking the stream (the watcher is wired to its ObservedTaskRepository).
    app = web.Application()
    cam_tasks.setup(app, end_to_end_settings(poll_interval_s=GUARD_S * 3))
    async with TestClient(TestServer(app)) as client:
        submitted = await client.post(
            f"{PREFIX}/tasks/sync-assets",
            json={"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]},
        )
        task_id = (await assert_success(submitted, 202))["task_id"]
        async with asyncio.timeout(GUARD_S):
            response = await client.get(f"{PREFIX}/tasks/{task_id}/events")
            events = await rest_of(sse_items(response))

    assert events[-1].name == "done"
    assert events[-1].data["status"] == "completed"
    percents = [e.data["progress"] for e in events]
    assert percents == sorted(percents)
    assert {e.name for e in events} >= {"status", "done"}
