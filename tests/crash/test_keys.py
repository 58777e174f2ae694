"""Concurrency keys and unique keys across real processes sharing one wire server: limits
hold across instances, slots of a killed process are freed by the rescue, and identical
submits spread over two instances store one task."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import TaskStatus, new_task
from cam_tasks.repository import MongoKeySlotRepository, MongoTaskRepository
from tests.crash.conftest import Spawn, executions, statuses
from tests.crash.worker_process import PROBE
from tests.support.waiting import eventually

pytestmark = pytest.mark.wire

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1/cam"


def _most_at_once(recorded: list[dict[str, Any]]) -> int:
    """The largest number of recorded executions that overlapped in time."""
    edges = []
    for execution in recorded:
        edges.append((execution["started_at"], 1))
        edges.append((execution.get("finished_at") or execution.get("interrupted_at"), -1))
    most = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts
        current += step
        most = max(most, current)
    return most


async def _store(uri: str, name: str) -> tuple[Any, MongoTaskRepository]:
    client: Any = AsyncMongoClient(uri, tz_aware=True)
    repo = MongoTaskRepository(client[name])
    await repo.initialize()
    return client, repo


async def test_two_processes_never_run_more_tasks_of_a_key_than_its_limit(
    wire_uri: str, spawn: Spawn
) -> None:
    name = f"keys_{datetime.now(UTC):%H%M%S%f}"
    client, repo = await _store(wire_uri, name)
    try:
        now = datetime.now(UTC)
        keyed = [
            await repo.insert(
                new_task(
                    task_type=PROBE,
                    params={"duration_s": 0.3},
                    now=now,
                    concurrency_key="acct:1",
                )
            )
            for _ in range(10)
        ]
        free = [
            await repo.insert(new_task(task_type=PROBE, params={"duration_s": 0.3}, now=now))
            for _ in range(10)
        ]
        for _ in range(2):
            await spawn(wire_uri, name, workers=5, limits="acct:*=2")
        db = client[name]
        await eventually(
            lambda: statuses(db), lambda c: c[TaskStatus.COMPLETED] == 20, timeout_s=90
        )
        keyed_runs = [e for e in await executions(db) if e["task_id"] in {t.id for t in keyed}]
        free_runs = [e for e in await executions(db) if e["task_id"] in {t.id for t in free}]
        assert len(keyed_runs) == 10
        assert len(free_runs) == 10
        assert _most_at_once(keyed_runs) <= 2  # across both processes
        assert _most_at_once(free_runs) > 2  # the others were not held back by the key
        # Every slot is freed (by its worker, just after the outcome it waited for is written).
        await eventually(MongoKeySlotRepository(db).held, lambda held: held == {}, timeout_s=10)
    finally:
        await client.drop_database(name)
        await client.close()


async def test_the_slot_of_a_killed_process_is_freed_by_the_rescue(
    wire_uri: str, spawn: Spawn
) -> None:
    name = f"keys_kill_{datetime.now(UTC):%H%M%S%f}"
    client, repo = await _store(wire_uri, name)
    try:
        db = client[name]
        holder = await spawn(wire_uri, name, workers=2, limits="acct:*=1", lease_s=2.0)
        first = await repo.insert(
            new_task(
                task_type=PROBE,
                params={"first_run_s": 60.0, "duration_s": 0.1},
                now=datetime.now(UTC),
                concurrency_key="acct:1",
            )
        )
        await eventually(lambda: executions(db), lambda found: len(found) == 1, timeout_s=30)
        assert await MongoKeySlotRepository(db).held() == {"acct:1": 1}
        holder.send(signal.SIGKILL)
        await holder.wait()
        second = await repo.insert(
            new_task(
                task_type=PROBE,
                params={"duration_s": 0.1},
                now=datetime.now(UTC),
                concurrency_key="acct:1",
            )
        )
        await spawn(wire_uri, name, workers=2, limits="acct:*=1", lease_s=2.0)
        done = await eventually(
            lambda: statuses(db), lambda c: c[TaskStatus.COMPLETED] == 2, timeout_s=60
        )
        assert done == {TaskStatus.COMPLETED: 2}
        assert {e["task_id"] for e in await executions(db)} == {first.id, second.id}
        # No slot leaked (the last one is freed just after its task's outcome is written).
        await eventually(MongoKeySlotRepository(db).held, lambda held: held == {}, timeout_s=10)
    finally:
        await client.drop_database(name)
        await client.close()


async def test_identical_submits_spread_over_two_instances_store_one_task(
    wire_uri: str,
) -> None:
    name = f"dedup_{datetime.now(UTC):%H%M%S%f}"
    clients: list[TestClient[Any, Any]] = []
    try:
        for _ in range(2):
            settings = load_settings(
                ROOT / "config.example.toml",
                mongo={"uri": wire_uri, "database": name},
                queue={"poll_interval_s": 0.2},
                schedules=[],
            )
            app = web.Application()
            cam_tasks.setup(app, settings)
            client: TestClient[Any, Any] = TestClient(TestServer(app))
            await client.start_server()
            clients.append(client)
        body = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}

        async def submit(n: int) -> tuple[int, dict[str, Any]]:
            response = await clients[n % 2].post(f"{API}/tasks/sync-assets", json=body)
            return response.status, (await response.json())["data"]

        answers = await asyncio.gather(*(submit(n) for n in range(20)))
        ids = {data["task_id"] for _, data in answers}
        assert len(ids) == 1
        (task_id,) = ids
        assert sorted(status for status, _ in answers).count(202) == 1
        assert all(data["deduplicated"] for status, data in answers if status == 200)

        async def status() -> str:
            response = await clients[0].get(f"{API}/tasks/{task_id}")
            return str((await response.json())["data"]["status"])

        await eventually(status, lambda s: s == "completed", timeout_s=60)
        again_status, again = await submit(1)
        assert again_status == 202
        assert again["task_id"] != task_id
    finally:
        for client in clients:
            await client.close()
        mongo: Any = AsyncMongoClient(wire_uri)
        await mongo.drop_database(name)
        await mongo.close()
