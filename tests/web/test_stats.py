"""The statistics endpoints through a real server: ``cam_tasks.setup`` on a host app, the
memory store, a ManualClock. Tasks of the unregistered type ``report`` are moved through the
store directly at chosen times (the dispatcher never claims them), so durations are exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import ManualClock, TaskError, new_task
from cam_tasks.executor import TaskContext
from tests.support.waiting import eventually
from tests.web.helpers import PREFIX, START, assert_error, assert_success

Client = TestClient[web.Request, web.Application]
BOOM = TaskError(type="RuntimeError", message="boom")


class GateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Gate:
    """Runs until the test opens the gate."""

    type = "gate"
    params_model = GateParams

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.open = asyncio.Event()

    async def execute(self, params: GateParams, ctx: TaskContext) -> Any:
        self.started.set()
        await self.open.wait()
        return {"ok": True}


class Server:
    def __init__(self, client: Client, runtime: cam_tasks.CamTasks, clock: ManualClock) -> None:
        self.client, self.runtime, self.clock = client, runtime, clock

    async def stats(self, query: str = "") -> dict[str, Any]:
        data = await assert_success(await self.client.get(f"{PREFIX}/tasks/stats{query}"))
        return dict(data)

    async def report(self, *, at_s: float, ran_s: float | None, failed: bool = False) -> None:
        """A ``report`` task created ``at_s`` after START; it ran ``ran_s`` (None: pending)."""
        tasks = self.runtime.tasks
        created = START + timedelta(seconds=at_s)
        await tasks.insert(new_task(task_type="report", params={}, now=created))
        if ran_s is None:
            return
        claimed = await tasks.claim(types={"report"}, owner="elsewhere", now=created, lease_s=600)
        assert claimed is not None
        end = created + timedelta(seconds=ran_s)
        if failed:
            await tasks.fail(claimed.lease, now=end, error=BOOM)
        else:
            await tasks.complete(claimed.lease, now=end, result=None)


@pytest.fixture
async def gate() -> Gate:
    return Gate()


@pytest.fixture
async def server(gate: Gate) -> AsyncIterator[Server]:
    clock = ManualClock(START)
    settings = load_settings(
        mongo={"uri": "memory://"},
        queue={"poll_interval_s": 0.05, "worker_count": 2, "buffer_size": 3},
        auth={"allow_anonymous": True},
        # The memory store judges retention by the wall clock, not by this test's clock.
        tasks={"retention_s": None},
    )
    async with AsyncExitStack() as stack:
        app = web.Application()
        runtime = cam_tasks.setup(app, settings, executors=[gate], clock=clock)
        client = await stack.enter_async_context(TestClient(TestServer(app)))
        yield Server(client, runtime, clock)
        gate.open.set()


# -- GET /tasks/stats ---------------------------------------------------------------------------


async def test_task_stats_count_rate_and_time_the_tasks_of_the_window(server: Server) -> None:
    for n, seconds in enumerate([4, 1, 3, 2]):
        await server.report(at_s=10 + n, ran_s=seconds)
    await server.report(at_s=20, ran_s=9, failed=True)
    await server.report(at_s=30, ran_s=None)
    await server.report(at_s=-10, ran_s=100)  # before the window

    # An offset is accepted too ("+" written %2B): 14:00+01:00 is 13:00Z.
    data = await server.stats("?since=2026-03-01T12:00:00Z&until=2026-03-01T14:00:00%2B01:00")

    counts = {"pending": 1, "running": 0, "completed": 4, "failed": 1, "cancelled": 0}
    assert data == {
        "since": "2026-03-01T12:00:00.000Z",
        "until": "2026-03-01T13:00:00.000Z",
        "counts": counts,
        "total": 6,
        "success_rate": 0.8,
        "types": [
            {
                "type": "report",
                "counts": counts,
                "total": 6,
                "success_rate": 0.8,
                "duration_s": {"count": 4, "avg": 2.5, "p50": 2.0, "p95": 4.0},
            }
        ],
        "queues": [{"queue": "default", "counts": counts, "total": 6}],
    }


async def test_the_default_window_is_the_last_24_hours(server: Server) -> None:
    await server.report(at_s=0, ran_s=1)
    server.clock.advance(25 * 3600)
    await server.report(at_s=25 * 3600 - 60, ran_s=None)

    data = await server.stats()

    assert data["since"] == "2026-03-01T13:00:00.000Z"
    assert data["until"] == "2026-03-02T13:00:00.000Z"
    assert data["total"] == 1
    assert data["counts"]["pending"] == 1
    assert data["success_rate"] is None
    assert data["types"][0]["duration_s"] is None


async def test_type_narrows_the_stats_to_one_task_type(server: Server, gate: Gate) -> None:
    await server.report(at_s=0, ran_s=1)
    response = await server.client.post(f"{PREFIX}/tasks", json={"type": "gate", "params": {}})
    await assert_success(response, 202)
    await asyncio.wait_for(gate.started.wait(), 10)
    server.clock.advance(1)  # the default window ends now, exclusive

    everything = await server.stats()
    gates = await server.stats("?type=gate")
    unknown = await server.stats("?type=nothing")

    assert [entry["type"] for entry in everything["types"]] == ["gate", "report"]
    assert [entry["type"] for entry in gates["types"]] == ["gate"]
    assert gates["counts"]["running"] == 1
    assert unknown["types"] == []
    assert unknown["total"] == 0


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("?since=yesterday", ["query", "since"]),
        ("?until=2026-03-01T12:00:00", ["query", "until"]),  # no zone
        ("?type=", ["query", "type"]),
        (f"?type={'x' * 201}", ["query", "type"]),
        ("?status=completed", ["query"]),
        ("?type[$ne]=x", ["query"]),
        ("?type=a&type=b", ["query", "type"]),
    ],
)
async def test_bad_queries_are_400_with_the_field_named(
    server: Server, query: str, loc: list[str]
) -> None:
    response = await server.client.get(f"{PREFIX}/tasks/stats{query}")

    data = await assert_error(response, 400, "bad_request")
    assert any(detail["loc"][: len(loc)] == loc for detail in data["details"]), data


async def test_stats_is_not_taken_for_a_task_id(server: Server) -> None:
    response = await server.client.post(f"{PREFIX}/tasks", json={"type": "gate", "params": {}})
    task_id = (await assert_success(response, 202))["task_id"]

    stats = await server.stats()
    task = await assert_success(await server.client.get(f"{PREFIX}/tasks/{task_id}"))
    not_a_task = await server.client.delete(f"{PREFIX}/tasks/stats")

    assert "counts" in stats
    assert task["id"] == task_id
    await assert_error(not_a_task, 404, "not_found")


# -- GET /queue/stats ----------------------------------------------------------------------------


async def test_queue_stats_show_workers_buffer_store_and_throughput(
    server: Server, gate: Gate
) -> None:
    idle = await assert_success(await server.client.get(f"{PREFIX}/queue/stats"))
    assert idle == {
        "owner": server.runtime.dispatcher.owner,
        "running": True,
        "buffer": {"size": 0, "capacity": 0},  # claims only for a free worker slot
        "workers": {"busy": 0, "total": 2},
        "held": 0,
        "tasks": {"pending": 0, "running": 0},
        "queues": {},
        "throughput": {"completed": 0, "window_s": 60.0, "per_s": 0.0},
    }

    ids = []
    for _ in range(6):  # 2 run; 4 stay pending in the store (claims only for a free slot)
        response = await server.client.post(f"{PREFIX}/tasks", json={"type": "gate", "params": {}})
        ids.append((await assert_success(response, 202))["task_id"])

    async def queue() -> dict[str, Any]:
        return dict(await assert_success(await server.client.get(f"{PREFIX}/queue/stats")))

    busy = await eventually(queue, lambda q: q["held"] == 2 and q["workers"]["busy"] == 2)
    assert busy["buffer"] == {"size": 0, "capacity": 0}
    assert busy["tasks"] == {"pending": 4, "running": 2}  # running = executing, nothing more
    assert busy["queues"] == {"default": {"pending": 4, "running": 2}}

    gate.open.set()
    done = await eventually(queue, lambda q: q["throughput"]["completed"] == 6)
    assert done["throughput"]["per_s"] == pytest.approx(0.1)
    assert done["tasks"] == {"pending": 0, "running": 0}
    assert done["queues"] == {}

    server.clock.advance(61)  # completions older than the window no longer count
    later = await queue()
    assert later["throughput"]["completed"] == 0


async def test_queue_stats_take_no_query(server: Server) -> None:
    response = await server.client.get(f"{PREFIX}/queue/stats?verbose=1")

    await assert_error(response, 400, "bad_request")


# -- scoping ------------------------------------------------------------------------------------


async def test_counts_cover_only_the_projects_a_non_admin_sees() -> None:
    clock = ManualClock(START)
    tokens = {
        "root": {"token": "root-token-0123456789", "role": "admin"},
        "viewer": {"token": "viewer-token-0123456789", "role": "viewer", "projects": ["p1"]},
    }
    settings = load_settings(
        mongo={"uri": "memory://"},
        auth={"tokens": tokens},
        tasks={"retention_s": None},
    )
    app = web.Application()
    runtime = cam_tasks.setup(app, settings, clock=clock)
    async with TestClient(TestServer(app)) as client:
        for project in ["p1", "p2", "p2", None]:
            task = new_task(task_type="report", params={}, now=clock.now(), project_id=project)
            await runtime.tasks.insert(task)
        clock.advance(1)

        async def get(path: str, who: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {who}-token-0123456789"}
            response = await client.get(f"{PREFIX}{path}", headers=headers)
            return dict(await assert_success(response))

        assert (await get("/tasks/stats", "root"))["total"] == 4
        assert (await get("/tasks/stats", "viewer"))["total"] == 1
        assert (await get("/queue/stats", "root"))["tasks"]["pending"] == 4
        assert (await get("/queue/stats", "viewer"))["tasks"]["pending"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "?since=2026-03-01T12:00:00Z&until=2026-03-01T11:00:00Z",
        "?since=2026-03-01T12:00:00Z&until=2026-03-01T12:00:00Z",
        "?since=2026-03-02T00:00:00Z",  # later than now, the default until
    ],
)
async def test_an_empty_or_reversed_window_counts_nothing(server: Server, query: str) -> None:
    await server.report(at_s=-10, ran_s=100)
    data = await assert_success(await server.client.get(f"{PREFIX}/tasks/stats{query}"))
    assert (data["total"], data["types"]) == (0, [])
